// The pure part of `cog inspect`: reading a model image's manifest and config, and printing it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  NotACogImageError,
  formatInspection,
  formatSize,
  frozenVersion,
  inspectImage,
  inspectionJson,
  outputType,
  schemaFields,
} from '../../src/image/inspect.js';

const schema = {
  openapi: '3.0.2',
  components: {
    schemas: {
      Input: {
        type: 'object',
        required: ['image'],
        properties: {
          steps: { type: 'integer', default: 20, 'x-order': 2, description: 'How many steps' },
          image: { type: 'string', format: 'uri', 'x-order': 0 },
          mode: { allOf: [{ $ref: '#/components/schemas/mode' }], default: 'fast', 'x-order': 1 },
          tags: { type: 'array', items: { type: 'string' }, 'x-order': 3 },
        },
      },
      mode: { title: 'mode', type: 'string', enum: ['fast', 'slow'] },
      Output: { type: 'array', items: { type: 'string' }, 'x-cog-array-type': 'iterator' },
    },
  },
};

const labels = {
  'run.cog.config': JSON.stringify({
    build: { python_version: '3.12', gpu: true, cuda: '12.4' },
    predict: 'predict.py:Predictor',
  }),
  'run.cog.version': '0.23.1',
  'run.cog.openapi_schema': JSON.stringify(schema),
  'run.cog.pip_freeze': 'numpy==2.1.0\ntorch==2.5.1\n',
};

const input = {
  reference: 'r8.im/u/m:latest',
  source: 'registry' as const,
  digest: `sha256:${'1'.repeat(64)}`,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifestDigest: `sha256:${'2'.repeat(64)}`,
  manifest: {
    config: { digest: `sha256:${'3'.repeat(64)}`, size: 1000 },
    layers: [
      {
        digest: `sha256:${'4'.repeat(64)}`,
        size: 3 * 1024 * 1024,
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      },
      {
        digest: `sha256:${'5'.repeat(64)}`,
        size: 24,
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      },
    ],
  },
  config: { os: 'linux', architecture: 'amd64', created: '2026-01-02T03:04:05Z', config: { Labels: labels } },
};

describe('cog inspect summary', () => {
  test('reads labels, config, schema, platform and size', () => {
    const i = inspectImage(input);
    assert.equal(i.platform, 'linux/amd64');
    assert.equal(i.size, 3 * 1024 * 1024 + 24 + 1000);
    assert.equal(i.cogVersion, '0.23.1');
    assert.equal(i.config.predict, 'predict.py:Predictor');
    assert.ok(i.openapiSchema);
    const json = inspectionJson(i);
    assert.deepEqual(Object.keys(json), [
      'reference',
      'source',
      'digest',
      'mediaType',
      'manifestDigest',
      'platform',
      'created',
      'size',
      'cogVersion',
      'labels',
      'config',
      'openapiSchema',
      'layers',
    ]);
  });

  test('a non-Cog image is an error with a hint', () => {
    assert.throws(
      () => inspectImage({ ...input, config: { os: 'linux', config: { Labels: { a: 'b' } } } }),
      (e: NotACogImageError) => e instanceof NotACogImageError && /skopeo inspect/.test(e.hint ?? ''),
    );
    assert.throws(() => inspectImage({ ...input, config: {} }), NotACogImageError);
  });

  test('the legacy org.cogmodel.config label still counts', () => {
    const i = inspectImage({
      ...input,
      config: { config: { Labels: { 'org.cogmodel.config': '{"build":{}}' } } },
    });
    assert.equal(i.platform, 'unknown');
    assert.equal(i.openapiSchema, undefined);
  });

  test('schema fields in x-order with types, defaults, choices and required', () => {
    const fields = schemaFields('Input', schema);
    assert.deepEqual(
      fields.map((f) => [f.name, f.type, f.required, f.default]),
      [
        ['image', 'file', true, undefined],
        ['mode', 'string', false, 'fast'],
        ['steps', 'integer', false, 20],
        ['tags', 'list[string]', false, undefined],
      ],
    );
    assert.deepEqual(fields[1]?.choices, ['fast', 'slow']);
    assert.equal(outputType('Output', schema), 'iterator[string]');
    assert.equal(outputType('TrainingOutput', schema), undefined);
  });

  test('the human view', () => {
    const text = formatInspection(inspectImage(input));
    assert.equal(
      text,
      [
        'Reference:    r8.im/u/m:latest',
        'Source:       registry',
        `Digest:       sha256:${'1'.repeat(64)}`,
        `Manifest:     sha256:${'2'.repeat(64)}`,
        'Platform:     linux/amd64',
        'Created:      2026-01-02T03:04:05Z',
        'Size:         3.0 MiB (2 layers)',
        'Cog version:  0.23.1',
        'Python:       3.12',
        'GPU:          yes (CUDA 12.4)',
        'Torch:        2.5.1',
        'Predict:      predict.py:Predictor',
        '',
        'Inputs:',
        '  image: file (required)',
        '  mode: string = "fast" one of "fast", "slow"',
        '  steps: integer = 20 — How many steps',
        '  tags: list[string]',
        'Output: iterator[string]',
        '',
      ].join('\n'),
    );
  });

  test('sizes and frozen versions', () => {
    assert.equal(formatSize(512), '512 B');
    assert.equal(formatSize(1536), '1.5 KiB');
    assert.equal(formatSize(5 * 1024 ** 3), '5.0 GiB');
    assert.equal(frozenVersion('Torch==2.1.0\nnumpy==1', 'torch'), '2.1.0');
    assert.equal(frozenVersion('torchvision==0.1', 'torch'), undefined);
    assert.equal(frozenVersion(undefined, 'torch'), undefined);
  });
});
