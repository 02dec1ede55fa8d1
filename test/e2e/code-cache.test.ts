// The CLI's V8 code cache through bin/cog: a command writes its cache once and the next run uses it
// (the file is not written again), also for `cog push`, whose registry client changes a V8 flag that
// would make V8 refuse a cache saved after it.
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;

before(async () => {
  tb = await ensureTestbed();
});

/** The cache files and their modification times. */
async function caches(cacheHome: string): Promise<Map<string, number>> {
  const dir = join(cacheHome, 'cog-ts', 'code-cache');
  const found = new Map<string, number>();
  for (const name of await readdir(dir).catch(() => [] as string[]))
    found.set(name, (await stat(join(dir, name))).mtimeMs);
  return found;
}

test('each command writes its code cache once; later runs use it', { timeout: 600_000 }, async () => {
  const cacheHome = await tempDir('cogts-codecache-home-');
  const store = join(await tempDir('cogts-codecache-store-'), 'store');
  const env = { ...tb.env, XDG_CACHE_HOME: cacheHome, COG_IMAGE_STORE: store, BUILDKIT_PROGRESS: 'quiet' };
  const ref = `${tb.registry}/cogts-test/codecache:${Date.now().toString(36)}`;
  const runs = [['--version'], ['push', ref, '--progress', 'quiet']];
  for (const args of runs) {
    const r = await exec(cog, args, { env, cwd: join(repoRoot, 'fixtures', 'models', 'hello') });
    assert.equal(r.code, 0, r.stderr);
  }
  const first = await caches(cacheHome);
  const names = [...first.keys()].sort();
  assert.equal(names.length, 2, names.join(', '));
  assert.match(names[0]!, /^cog-main-[0-9a-f]{32}-other\.v8cache$/);
  assert.match(names[1]!, /^cog-main-[0-9a-f]{32}-push\.v8cache$/);
  for (const args of runs) {
    const r = await exec(cog, args, { env, cwd: join(repoRoot, 'fixtures', 'models', 'hello') });
    assert.equal(r.code, 0, r.stderr);
  }
  assert.deepEqual(await caches(cacheHome), first, 'used, not written again (V8 took both)');
});
