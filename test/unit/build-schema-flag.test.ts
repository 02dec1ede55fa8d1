// `cog build --openapi-schema FILE` / COG_OPENAPI_SCHEMA: a file that is not JSON is refused before
// anything connects to buildkitd, naming the flag or the variable the user set.
import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { repoRoot } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tempDir = tempDirsRemovedAfterTests();

async function project(): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const dir = await tempDir('cogts-schema-flag-');
  await cp(join(repoRoot, 'fixtures', 'models', 'hello'), join(dir, 'hello'), { recursive: true });
  await writeFile(join(dir, 'not-json.json'), '{"openapi": ');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // nothing listens here: an error about the schema must come first
    BUILDKIT_HOST: `unix://${join(dir, 'no-buildkitd.sock')}`,
    XDG_CACHE_HOME: join(dir, 'cache'),
    COG_IMAGE_STORE: join(dir, 'store'),
  };
  delete env.COG_OPENAPI_SCHEMA;
  return { dir, env };
}

test('--openapi-schema with a file that is not JSON names the flag', async () => {
  const { dir, env } = await project();
  const r = await exec(cog, ['build', '--openapi-schema', '../not-json.json'], {
    cwd: join(dir, 'hello'),
    env,
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /--openapi-schema \.\.\/not-json\.json: not a readable JSON file/);
  assert.doesNotMatch(r.stderr, /buildkitd|COG_OPENAPI_SCHEMA/);
});

test('COG_OPENAPI_SCHEMA naming a missing file names the variable, not the flag', async () => {
  const { dir, env } = await project();
  const missing = join(dir, 'missing.json');
  const r = await exec(cog, ['build'], {
    cwd: join(dir, 'hello'),
    env: { ...env, COG_OPENAPI_SCHEMA: missing },
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`COG_OPENAPI_SCHEMA=${missing}: not a readable JSON file .*ENOENT`));
  assert.doesNotMatch(r.stderr, /--openapi-schema|buildkitd/);
});

test('a schema file that is JSON but no OpenAPI document is refused, saying what it lacks', async () => {
  const { dir, env } = await project();
  const cases: [string, string][] = [
    ['[1,2]', 'it is an array, not an OpenAPI document (a JSON object)'],
    ['{"openapi":"3.0.2"}', 'its "info" needs a "title" and a "version" (strings)'],
    ['{"openapi":"2.0","info":{"title":"x","version":"1"},"paths":{}}', 'its "openapi" field is "2.0"'],
    ['{"openapi":"3.0.2","info":{"title":"x","version":"1"}}', 'it has no "paths" object'],
  ];
  for (const [text, problem] of cases) {
    await writeFile(join(dir, 'schema.json'), text);
    // cog debug reads the schema as a build would (the label shows it), without a daemon
    const r = await exec(cog, ['debug'], {
      cwd: join(dir, 'hello'),
      env: { ...env, COG_OPENAPI_SCHEMA: '../schema.json' },
    });
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.startsWith(`cog: error: COG_OPENAPI_SCHEMA=../schema.json: ${problem}`), r.stderr);
    assert.match(r.stderr, /^hint: give the path of an OpenAPI schema in JSON/m);
  }
  // the smallest document that passes: the build goes on (to the missing daemon, here)
  await writeFile(
    join(dir, 'schema.json'),
    '{"openapi":"3.0.2","info":{"title":"x","version":"1"},"paths":{}}',
  );
  const ok = await exec(cog, ['debug'], {
    cwd: join(dir, 'hello'),
    env: { ...env, COG_OPENAPI_SCHEMA: '../schema.json' },
  });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /label {2}run\.cog\.openapi_schema=\{"openapi":"3\.0\.2"/);
});

test('an SDK below 0.17: no static schema; cog debug says the build reads it from the image', async () => {
  const { dir, env } = await project();
  const config = join(dir, 'hello', 'cog.yaml');
  await writeFile(
    config,
    "build:\n  python_version: '3.11'\n  sdk_version: '0.16.12'\nrun: 'predict.py:Predictor'\n",
  );
  const r = await exec(cog, ['debug'], { cwd: join(dir, 'hello'), env });
  assert.equal(r.code, 0, r.stderr);
  const schemaLines = r.stdout.split('\n').filter((l) => l.includes('run.cog.openapi_schema'));
  assert.deepEqual(schemaLines, [
    'label  run.cog.openapi_schema=(read from the built image: `python -m cog.command.openapi_schema`, the cog SDK being below 0.17)',
  ]);
  // a schema file still wins over the image's, as upstream's order has it
  await writeFile(
    join(dir, 'schema.json'),
    '{"openapi":"3.0.2","info":{"title":"x","version":"1"},"paths":{}}',
  );
  const given = await exec(cog, ['debug'], {
    cwd: join(dir, 'hello'),
    env: { ...env, COG_OPENAPI_SCHEMA: '../schema.json' },
  });
  assert.equal(given.code, 0, given.stderr);
  assert.doesNotMatch(given.stdout, /read from the built image: `python -m cog/);
  assert.match(given.stdout, /run\.cog\.openapi_schema=\{"openapi"/);
});
