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
