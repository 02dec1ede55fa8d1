// A frontend's solved graph as an LLB input (its ops sent back byte for byte), and the model image
// compiled on top of a Dockerfile's result: schema under WORKDIR, labels, concurrency, the freeze probe.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { State, definitionOutput, image, readDefinition } from '../../src/llb/index.js';
import { compileOnDockerfile, schemaPathIn } from '../../src/plan/compile-dockerfile.js';

/** A definition like the one a Dockerfile frontend returns: an image, a run, with metadata. */
function frontendDefinition() {
  return image('python:3.11-slim')
    .run({ shell: 'pip install cog', name: '[2/3] RUN pip install cog' })
    .root()
    .marshal().definition;
}

test('a solved definition becomes an input whose ops keep their bytes, digests and metadata', () => {
  const definition = frontendDefinition();
  const original = readDefinition(definition);
  const built = new State(definitionOutput(definition)).mkfile('/x', 'y', {}, { name: 'add x' });
  const ops = readDefinition(built.marshal().definition);
  // every op of the frontend's graph (not its terminal) is sent as it came, in dependency order
  for (const op of original.slice(0, -1)) {
    const sent = ops.find((o) => o.digest === op.digest);
    assert.ok(sent, `op ${op.digest} kept`);
    assert.deepEqual(Buffer.from(sent.bytes), Buffer.from(op.bytes));
    assert.deepEqual(sent.metadata, op.metadata);
  }
  const run = original.find((o) => o.kind === 'exec');
  const add = ops.find((o) => o.metadata.description?.['llb.customname'] === 'add x');
  assert.equal(add?.op.inputs?.[0]?.digest, run?.digest, 'the new op builds on the frontend’s result');
  assert.ok(ops.indexOf(add as never) > ops.findIndex((o) => o.digest === run?.digest));
  assert.throws(() => definitionOutput({ def: [], metadata: {} }), /names no result/);
  // --no-cache marks our ops only: the frontend ran its own already (with its own no-cache)
  const again = readDefinition(built.marshal({ ignoreCache: true }).definition);
  assert.equal(again.find((o) => o.digest === run?.digest)?.metadata.ignore_cache, undefined);
  assert.equal(
    again.find((o) => o.metadata.description?.['llb.customname'] === 'add x')?.metadata.ignore_cache,
    true,
  );
});

test('the model image on a Dockerfile: schema under WORKDIR, labels and concurrency in the config', () => {
  assert.equal(schemaPathIn('/src'), '/src/.cog/openapi_schema.json');
  assert.equal(schemaPathIn('/app/'), '/app/.cog/openapi_schema.json');
  assert.equal(schemaPathIn(undefined), '/.cog/openapi_schema.json');
  assert.equal(schemaPathIn(''), '/.cog/openapi_schema.json');

  const compiled = compileOnDockerfile(
    frontendDefinition(),
    {
      architecture: 'amd64',
      os: 'linux',
      config: {
        Env: ['PATH=/usr/local/bin:/usr/bin', 'COG_MAX_CONCURRENCY=9'],
        WorkingDir: '/src',
        Labels: { mine: 'kept', 'run.cog.version': 'old' },
        Cmd: ['python', '-m', 'cog.server.http'],
      },
    },
    {
      labels: { 'run.cog.version': '0.23.1', 'run.cog.has_init': 'true' },
      openapiSchema: '{"openapi":"3.0.2"}',
      concurrencyMax: 4,
      predict: 'predict.py:Predictor',
      platform: { os: 'linux', architecture: 'amd64' },
    },
  );
  assert.deepEqual(compiled.config.config?.Labels, {
    mine: 'kept',
    'run.cog.version': '0.23.1',
    'run.cog.has_init': 'true',
  });
  assert.deepEqual(compiled.config.config?.Env, [
    'PATH=/usr/local/bin:/usr/bin',
    'COG_PREDICT_TYPE_STUB=predict.py:Predictor',
    'COG_MAX_CONCURRENCY=4',
  ]);
  assert.deepEqual(compiled.config.config?.Cmd, ['python', '-m', 'cog.server.http']);

  assert.equal(
    compiled.image.getEnv('COG_PREDICT_TYPE_STUB'),
    'predict.py:Predictor',
    'a smoke test sees it',
  );
  assert.equal(compiled.image.getEnv('COG_MAX_CONCURRENCY'), '4');
  const ops = readDefinition(compiled.image.marshal().definition);
  const schema = ops.find((o) => o.metadata.description?.['llb.customname'] === 'add the OpenAPI schema');
  const actions = schema?.op.file?.actions ?? [];
  assert.ok(actions.some((a) => a.mkfile?.path === '/src/.cog/openapi_schema.json'));
  assert.ok(actions.some((a) => a.mkdir?.path === '/src/.cog'));

  // the freeze runs on the Dockerfile's result with the image's env and WORKDIR, not after the schema
  const freezeOps = readDefinition(compiled.freeze.marshal().definition);
  const freeze = freezeOps.find((o) => o.metadata.description?.['llb.customname'] === 'pip freeze');
  assert.ok(freeze?.op.exec?.meta?.env?.includes('PATH=/usr/local/bin:/usr/bin'));
  assert.equal(freeze?.op.exec?.meta?.cwd, '/src');
  assert.ok(!freezeOps.some((o) => o.metadata.description?.['llb.customname'] === 'add the OpenAPI schema'));

  // without a concurrency or predictor in cog.yaml the image's own env stays; without a schema no file step
  const plain = compileOnDockerfile(
    frontendDefinition(),
    { config: { Env: ['COG_MAX_CONCURRENCY=9'] } },
    { labels: {}, platform: { os: 'linux', architecture: 'amd64' } },
  );
  assert.deepEqual(plain.config.config?.Env, ['COG_MAX_CONCURRENCY=9']);
  assert.ok(
    !readDefinition(plain.image.marshal().definition).some(
      (o) => o.metadata.description?.['llb.customname'] === 'add the OpenAPI schema',
    ),
  );
});
