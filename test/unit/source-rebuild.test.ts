// The source-only rebuild's pure half and its layer writer: the key of everything below the source
// layer (what may change without it changing, what must change it), the image with its source layer
// replaced, the recorded cog-base choice applied again, the tar the layer writer makes, and the upload
// sessions of a push that fails.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { link, mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { type ResolvedBase, compileOnBase, inputOnBase } from '../../src/build/resolved-base.js';
import { type OciManifest, belowSourceKey, nextSourceImage } from '../../src/build/source-image.js';
import { type SourceRecord, sourceRecordFormat } from '../../src/build/source-record.js';
import { openPushTarget, rebuildSource } from '../../src/build/source-rebuild.js';
import type { BuildArgs } from '../../src/cli/prepare-build.js';
import { RegistryClient } from '../../src/registry/index.js';
import type { OciImageConfig } from '../../src/buildkit/gateway.js';
import { writeSourceLayer } from '../../src/image/source-layer.js';
import { type TarEntry, tarEnd, tarHeader, tarPadding } from '../../src/image/tar-header.js';
import type { PlanInput } from '../../src/plan/types.js';
import { startFakeRegistry } from '../support/fake-registry.js';
import { minimalPlanInput } from '../support/plan-inputs.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

const tempDir = tempDirsRemovedAfterTests();
const platform = { OS: 'linux', Architecture: 'amd64' };
const base: ResolvedBase = {
  image: 'python:3.11-slim',
  digest: `sha256:${'a'.repeat(64)}`,
  config: { config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin'] } },
  onCogBase: false,
};

function keyOf(input: PlanInput): string | undefined {
  const { compiled } = compileOnBase(input, base, 'cog:/project');
  assert.ok(compiled.belowSource, 'the plan has the source on top');
  return belowSourceKey(compiled.belowSource, platform);
}

describe('belowSourceKey', () => {
  const plain = keyOf(minimalPlanInput());

  test('is the same for inputs that only change the source layer or the config', () => {
    assert.ok(plain);
    assert.equal(keyOf(minimalPlanInput()), plain);
    assert.equal(keyOf(minimalPlanInput({ openapiSchema: '{"openapi":"3.0.2"}' })), plain);
    assert.equal(keyOf(minimalPlanInput({ sourceExclude: ['*.log'] })), plain);
    assert.equal(keyOf(minimalPlanInput({ labels: { 'org.opencontainers.image.revision': 'abc' } })), plain);
  });

  test('changes with anything the layers below the source are made of', () => {
    const changed = [
      minimalPlanInput({ systemPackages: ['ffmpeg'] }),
      minimalPlanInput({ environment: [['NAME', 'value']] }),
      minimalPlanInput({ pythonVersion: '3.12', baseImage: 'python:3.12-slim' }),
      minimalPlanInput({ runCommands: [{ command: 'echo hi', secrets: [] }] }),
      minimalPlanInput({ requirements: 'six==1.17.0\n' }),
      minimalPlanInput({ requirements: 'six==1.16.0\n' }),
    ];
    for (const input of changed) assert.notEqual(keyOf(input), plain, JSON.stringify(input));
    assert.notEqual(keyOf(changed[4]!), keyOf(changed[5]!), 'another requirement pin');
    const { compiled } = compileOnBase(
      minimalPlanInput(),
      { ...base, digest: `sha256:${'b'.repeat(64)}` },
      'k',
    );
    assert.notEqual(belowSourceKey(compiled.belowSource!, platform), plain, 'another base digest');
  });

  test('is undefined when the layers below read client files, whose contents the graph cannot show', () => {
    assert.equal(keyOf(minimalPlanInput({ weights: { dirs: [], files: ['model.bin'] } })), undefined);
    const wheel = minimalPlanInput({ sdk: { kind: 'file', path: '/wheels/cog-0.1-py3-none-any.whl' } });
    assert.equal(keyOf(wheel), undefined);
    const artifact = minimalPlanInput({
      requirements: './dist/pkg-1.0.tar.gz\n',
      localArtifacts: ['dist/pkg-1.0.tar.gz'],
    });
    assert.equal(keyOf(artifact), undefined);
  });

  test('there is no source on top when a step runs after the source copy', () => {
    const { compiled } = compileOnBase(minimalPlanInput({ configFileName: 'other.yaml' }), base, 'k');
    assert.equal(compiled.belowSource, undefined);
  });
});

describe('inputOnBase', () => {
  const candidate = { image: 'r8.im/cog-base:python3.11', required: false };

  test('applies a recorded cog-base choice, and a recorded fallback', () => {
    const requested = minimalPlanInput({ cogBase: candidate } as Partial<PlanInput>);
    const cogConfig = { ...base.config, rootfs: { type: 'layers', diff_ids: [`sha256:${'f'.repeat(64)}`] } };
    const onCog = inputOnBase(requested, {
      ...base,
      image: candidate.image,
      config: cogConfig,
      onCogBase: true,
    });
    assert.equal(onCog?.baseImage, candidate.image);
    assert.equal(onCog?.baseKind, 'cog-base');
    const fellBack = inputOnBase(requested, base);
    assert.equal(fellBack?.baseImage, 'python:3.11-slim');
    assert.equal(fellBack?.cogBase, undefined);
  });

  test('refuses a record made for another base', () => {
    assert.equal(inputOnBase(minimalPlanInput(), { ...base, image: 'python:3.12-slim' }), undefined);
    const other = minimalPlanInput({
      cogBase: { ...candidate, image: 'r8.im/cog-base:other' },
    } as Partial<PlanInput>);
    assert.equal(inputOnBase(other, { ...base, image: candidate.image, onCogBase: true }), undefined);
    const required = minimalPlanInput({ cogBase: { ...candidate, required: true } } as Partial<PlanInput>);
    assert.equal(inputOnBase(required, base), undefined, 'a required cog-base never falls back');
  });
});

/** A manifest of three layers (digests of 1s, 2s, 3s) and a config of 9 bytes. */
const layer = (n: number) => ({
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: `sha256:${String(n).repeat(64)}`,
  size: 100 + n,
});
const manifest: OciManifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: `sha256:${'c'.repeat(64)}`,
    size: 9,
  },
  layers: [layer(1), layer(2), layer(3)],
};

describe('nextSourceImage', () => {
  const config: OciImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    created: '2026-01-01T00:00:00Z',
    config: { Env: ['OLD=1'], Labels: { 'run.cog.pip_freeze': 'cog==0.23.1\nsix==1.17.0', old: 'x' } },
    rootfs: { type: 'layers', diff_ids: ['sha256:d1', 'sha256:d2', 'sha256:d3'] },
    history: [
      { created: '2026-01-01T00:00:00Z', created_by: 'base' },
      { created: '2026-01-01T00:00:00Z', created_by: 'env', empty_layer: true },
      { created: '2026-01-02T00:00:00Z', created_by: 'pip install' },
      { created: '2026-01-03T00:00:00Z', created_by: 'copy the project to /src' },
      { created: '2026-01-03T00:00:00Z', created_by: 'predictor', empty_layer: true },
    ],
  };
  const now = new Date('2026-11-23T12:00:00Z');
  const next = nextSourceImage(
    { manifest, config },
    { digest: `sha256:${'e'.repeat(64)}`, diffId: 'sha256:new', size: 4242 },
    { Env: ['NEW=1'], Labels: { 'run.cog.openapi_schema': '{}' } },
    now,
  );
  const nextManifest = JSON.parse(next.manifest.toString('utf8')) as OciManifest;
  const nextConfig = JSON.parse(next.config.toString('utf8')) as OciImageConfig;

  test('keeps every layer below the source and replaces the top one', () => {
    assert.deepEqual(nextManifest.layers.slice(0, 2), manifest.layers.slice(0, 2));
    assert.deepEqual(nextManifest.layers[2], {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: `sha256:${'e'.repeat(64)}`,
      size: 4242,
    });
    assert.deepEqual(nextConfig.rootfs, {
      type: 'layers',
      diff_ids: ['sha256:d1', 'sha256:d2', 'sha256:new'],
    });
  });

  test('names the new config by its digest and size', () => {
    const digest = `sha256:${createHash('sha256').update(next.config).digest('hex')}`;
    assert.deepEqual(nextManifest.config, {
      mediaType: manifest.config.mediaType,
      digest,
      size: next.config.length,
    });
    assert.deepEqual(next.configDescriptor, nextManifest.config);
  });

  test('takes the new settings, keeps the packages’ labels, dates only the source layer', () => {
    assert.deepEqual(nextConfig.config?.Env, ['NEW=1']);
    assert.deepEqual(nextConfig.config?.Labels, {
      'run.cog.openapi_schema': '{}',
      'run.cog.pip_freeze': 'cog==0.23.1\nsix==1.17.0',
      'run.cog.version': '0.23.1',
    });
    assert.equal(nextConfig.created, '2026-01-01T00:00:00Z');
    assert.deepEqual(
      nextConfig.history?.map((h) => h.created),
      [
        '2026-01-01T00:00:00Z',
        '2026-01-01T00:00:00Z',
        '2026-01-02T00:00:00Z',
        now.toISOString(),
        '2026-01-03T00:00:00Z',
      ],
    );
  });

  test('refuses an image whose config does not list its layers', () => {
    const broken = { ...config, rootfs: { type: 'layers', diff_ids: ['sha256:d1'] } };
    assert.throws(() =>
      nextSourceImage({ manifest, config: broken }, { digest: 'x', diffId: 'y', size: 1 }, {}, now),
    );
  });
});

interface Entry {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkpath: string;
  content: string;
}

async function entriesOf(gzipped: Buffer): Promise<Entry[]> {
  const entries: Entry[] = [];
  const parser = new Parser();
  parser.on('entry', (entry: ReadEntry) => {
    const chunks: Buffer[] = [];
    entry.on('data', (chunk: Buffer) => chunks.push(chunk));
    entry.on('end', () =>
      entries.push({
        path: entry.path,
        type: entry.type,
        mode: entry.mode ?? -1,
        uid: entry.uid ?? -1,
        gid: entry.gid ?? -1,
        mtime: entry.mtime?.getTime() ?? -1,
        linkpath: entry.linkpath ?? '',
        content: Buffer.concat(chunks).toString('utf8'),
      }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    parser.end(gunzipSync(gzipped));
  });
  return entries;
}

describe('writeSourceLayer', () => {
  test('writes the filtered project and the generated files under src/, owned by root, with both digests', async () => {
    const project = await tempDir('cog-source-layer-');
    await writeFile(join(project, 'predict.py'), 'print(1)\n');
    await writeFile(join(project, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(project, 'notes.log'), 'ignored');
    await mkdir(join(project, 'pkg', 'deep'), { recursive: true });
    const long = `${'d'.repeat(60)}/${'f'.repeat(70)}.py`;
    await mkdir(join(project, 'pkg', 'deep', 'd'.repeat(60)));
    await writeFile(join(project, 'pkg', 'deep', long), 'long = True\n');
    await symlink('predict.py', join(project, 'link.py'));
    await link(join(project, 'predict.py'), join(project, 'hard.py'));
    await mkdir(join(project, '.cog'));
    await writeFile(join(project, '.cog', 'stale.json'), '{}');
    const dest = join(await tempDir('cog-source-out-'), 'layer.tar.gz');
    const newest = new Date('2030-01-02T03:04:05.750Z');
    await utimes(join(project, 'run.sh'), newest, newest);
    const spec = {
      projectDir: project,
      exclude: ['.cog', '*.log'],
      files: [{ path: '/src/.cog/openapi_schema.json', content: '{"openapi":"3.0.2"}' }],
    };
    const written = await writeSourceLayer(spec, dest);
    assert.deepEqual(written.sourceDate, new Date('2030-01-02T03:04:05Z'), 'the newest change, in seconds');
    const gzipped = await readFile(dest);
    assert.equal(written.size, gzipped.length);
    assert.equal(written.digest, `sha256:${createHash('sha256').update(gzipped).digest('hex')}`);
    assert.equal(written.diffId, `sha256:${createHash('sha256').update(gunzipSync(gzipped)).digest('hex')}`);

    const entries = await entriesOf(gzipped);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.deepEqual(
      entries.map((e) => e.path),
      [
        'src/',
        'src/.cog/',
        'src/.cog/openapi_schema.json',
        'src/hard.py',
        'src/link.py',
        'src/pkg/',
        'src/pkg/deep/',
        `src/pkg/deep/${'d'.repeat(60)}/`,
        `src/pkg/deep/${long}`,
        'src/predict.py',
        'src/run.sh',
      ],
    );
    for (const entry of entries) assert.deepEqual([entry.uid, entry.gid], [0, 0], entry.path);
    assert.equal(byPath.get('src/.cog/openapi_schema.json')?.content, '{"openapi":"3.0.2"}');
    for (const made of ['src/', 'src/.cog/', 'src/.cog/openapi_schema.json'])
      assert.equal(byPath.get(made)?.mtime, Date.parse('2030-01-02T03:04:05Z'), made);
    assert.equal(byPath.get('src/run.sh')?.mode, 0o755);
    assert.equal(byPath.get('src/link.py')?.type, 'SymbolicLink');
    assert.equal(byPath.get('src/link.py')?.linkpath, 'predict.py');
    // the first of two hard links is the file, the second links to it
    assert.equal(byPath.get('src/hard.py')?.content, 'print(1)\n');
    assert.equal(byPath.get('src/predict.py')?.type, 'Link');
    assert.equal(byPath.get('src/predict.py')?.linkpath, 'src/hard.py');
    assert.equal(byPath.get(`src/pkg/deep/${long}`)?.content, 'long = True\n');

    // the same project makes the same layer; its progress counts the project's file bytes, each once
    const progress: [number, number][] = [];
    const again = await writeSourceLayer(spec, `${dest}.again`, {
      onBytes: (done, total) => progress.push([done, total]),
    });
    assert.deepEqual(again, written);
    const projectBytes = entries
      .filter((e) => e.type === 'File' && e.path !== 'src/.cog/openapi_schema.json')
      .reduce((sum, e) => sum + (e.content?.length ?? 0), 0);
    assert.ok(projectBytes > 0);
    assert.deepEqual(progress.at(-1), [projectBytes, projectBytes]);
    for (const [i, [done]] of progress.entries()) assert.ok(i === 0 || done > progress[i - 1]![0]);
    // a project file the plan writes over is not streamed, nor counted
    const replacing: [number, number][] = [];
    const runSh = byPath.get('src/run.sh')?.content.length ?? 0;
    assert.ok(runSh > 0);
    await writeSourceLayer(
      { ...spec, files: [...spec.files, { path: '/src/run.sh', content: 'generated' }] },
      `${dest}.replacing`,
      { onBytes: (done, total) => replacing.push([done, total]) },
    );
    assert.deepEqual(replacing.at(-1), [projectBytes - runSh, projectBytes - runSh]);
  });
});

describe('tarHeader', () => {
  /** An archive of `entries` (content: `size` bytes of 'x'), read back with node-tar. */
  async function roundTrip(entries: readonly TarEntry[]) {
    const parts: Buffer[] = [];
    for (const entry of entries) {
      parts.push(tarHeader(entry));
      if (entry.type === 'file') parts.push(Buffer.alloc(entry.size, 'x'), tarPadding(entry.size));
    }
    parts.push(tarEnd());
    return entriesOf(gzipSync(Buffer.concat(parts)));
  }

  test('ustar fields, a path split into prefix and name, PAX for what does not fit', async () => {
    const mtime = new Date('2026-11-23T12:34:56Z');
    const split = `src/${'a'.repeat(120)}/${'b'.repeat(90)}.py`;
    const tooLong = `src/${'c'.repeat(300)}.py`;
    const unicode = `src/${'é'.repeat(60)}.py`;
    const longTarget = `src/${'d'.repeat(150)}`;
    const read = await roundTrip([
      { path: 'src/', type: 'directory', mode: 0o755, size: 0, mtime },
      { path: 'src/run.sh', type: 'file', mode: 0o4755, size: 5, mtime },
      { path: split, type: 'file', mode: 0o644, size: 3, mtime },
      { path: tooLong, type: 'file', mode: 0o600, size: 600, mtime },
      { path: unicode, type: 'file', mode: 0o644, size: 1, mtime },
      { path: 'src/link', type: 'symlink', mode: 0o777, size: 0, mtime, linkpath: longTarget },
      { path: 'src/hard', type: 'hardlink', mode: 0o644, size: 0, mtime, linkpath: 'src/run.sh' },
    ]);
    assert.deepEqual(
      read.map((e) => [e.path, e.type, e.mode, e.uid, e.gid, e.mtime, e.content.length, e.linkpath]),
      [
        ['src/', 'Directory', 0o755, 0, 0, mtime.getTime(), 0, ''],
        ['src/run.sh', 'File', 0o4755, 0, 0, mtime.getTime(), 5, ''],
        [split, 'File', 0o644, 0, 0, mtime.getTime(), 3, ''],
        [tooLong, 'File', 0o600, 0, 0, mtime.getTime(), 600, ''],
        [unicode, 'File', 0o644, 0, 0, mtime.getTime(), 1, ''],
        ['src/link', 'SymbolicLink', 0o777, 0, 0, mtime.getTime(), 0, longTarget],
        ['src/hard', 'Link', 0o644, 0, 0, mtime.getTime(), 0, 'src/run.sh'],
      ],
    );
  });

  test('a size past ustar’s 8 GiB goes in a PAX record', () => {
    const size = 9 * 1024 ** 3;
    const header = tarHeader({ path: 'src/model.bin', type: 'file', mode: 0o644, size, mtime: new Date(0) });
    assert.equal(header.length, 512 * 3, 'PAX header, its record, the entry');
    assert.match(header.subarray(512, 1024).toString('utf8'), new RegExp(`^\\d+ size=${size}\\n`));
    assert.equal(header.subarray(512 * 2 + 124, 512 * 2 + 135).toString('utf8'), '00000000000');
  });

  test('the checksum is what tar expects', () => {
    const header = tarHeader({ path: 'src/a', type: 'file', mode: 0o644, size: 1, mtime: new Date(0) });
    const stored = Number.parseInt(header.subarray(148, 154).toString('utf8'), 8);
    const copy = Buffer.from(header);
    copy.fill(' ', 148, 156);
    assert.equal(
      stored,
      copy.reduce((sum, byte) => sum + byte, 0),
    );
  });
});

describe('rebuildSource to a registry', () => {
  function recordFor(imageName: string, below: string): SourceRecord {
    return {
      format: sourceRecordFormat,
      key: 'k',
      below,
      base,
      imageName,
      output: { kind: 'push', ref: imageName },
      manifest: JSON.stringify({ ...manifest, layers: manifest.layers.slice(0, 2) }),
      config: JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: ['sha256:d1', 'sha256:d2'] },
      }),
      notes: [],
      args: {} as BuildArgs,
    };
  }

  async function rebuildThrough(refuseCommits: boolean, recordedName?: string) {
    const registry = await startFakeRegistry({ refuseCommits });
    try {
      const project = await tempDir('cog-source-push-');
      await writeFile(join(project, 'predict.py'), 'print(1)\n');
      const input = minimalPlanInput();
      const below = keyOf(input);
      assert.ok(below);
      const imageName = `${registry.host}/repo:x`;
      const record = recordFor(recordedName ?? imageName, below);
      const target = openPushTarget(new RegistryClient(), imageName);
      const result = await rebuildSource({
        record,
        input,
        projectDir: project,
        imageName,
        sharedKeyHint: 'cog:/project',
        target,
      }).catch((err: unknown) => err);
      const count = (method: string) => registry.log.filter((r) => r.method === method).length;
      const deleted = registry.log
        .filter((r) => r.method === 'DELETE')
        .map((r) => `${r.path} ${r.status}`)
        .sort();
      return { result, count, deleted };
    } finally {
      await registry.close();
    }
  }

  test('a failed upload deletes each of its two upload sessions once', async () => {
    const { result, count, deleted } = await rebuildThrough(true);
    assert.ok(result instanceof Error, 'the rebuild fails');
    assert.equal(count('POST'), 2, 'the layer and the config each had a session');
    assert.equal(count('PUT'), 2, 'both commits were refused');
    assert.deepEqual(deleted, ['/v2/repo/blobs/uploads/1 204', '/v2/repo/blobs/uploads/2 204']);
  });

  test('a declined rebuild deletes the sessions it opened early', async () => {
    const { result, count, deleted } = await rebuildThrough(false, 'elsewhere/repo:x');
    assert.deepEqual(result, { kind: 'declined', reason: 'the last build sent its image elsewhere' });
    assert.equal(count('PUT'), 0);
    assert.deepEqual(deleted, ['/v2/repo/blobs/uploads/1 204', '/v2/repo/blobs/uploads/2 204']);
  });
});
