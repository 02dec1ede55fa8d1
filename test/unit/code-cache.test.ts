// cli/code-cache.ts: a CommonJS bundle runs with its exports, require and __filename; its V8 code
// cache is written once per build id, used afterwards, replaced when V8 refuses it, and a cache
// directory that cannot be written only costs the compile.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { loadWithCodeCache } from '../../src/cli/code-cache.js';

const moduleUrl = new URL('../../src/cli/code-cache.js', import.meta.url).href;

/**
 * The cache state of a load in a fresh process: within one process V8 reuses its own compilation of
 * the same source and never looks at the data given.
 */
function loadInChild(file: string, cacheDir: string, buildId: string): string {
  const script = `const { loadWithCodeCache } = await import(${JSON.stringify(moduleUrl)});
const loaded = loadWithCodeCache(...JSON.parse(process.argv[1]), 'test');
const answer = loaded.fromCache ? 'used' : loaded.save() ? 'written' : 'unwritable';
process.stdout.write(answer + ' ' + loaded.exports.twice(21));`;
  return execFileSync(
    process.execPath,
    ['--input-type=module', '-e', script, JSON.stringify([file, cacheDir, buildId])],
    {
      encoding: 'utf8',
    },
  );
}

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function bundle(): Promise<{ file: string; cacheDir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-codecache-'));
  dirs.push(dir);
  const file = join(dir, 'cli-main.cjs');
  await writeFile(
    file,
    [
      '"use strict";',
      "const { basename } = require('node:path');",
      'function twice(n) { return n * 2; }',
      'module.exports = { twice, where: basename(__filename), dir: __dirname, self: this === exports };',
    ].join('\n'),
  );
  return { file, cacheDir: join(dir, 'cache') };
}

test('the cache is written when saved and used on the next load', async () => {
  const { file, cacheDir } = await bundle();
  const first = loadWithCodeCache(file, cacheDir, 'b1', 'test');
  assert.equal(first.fromCache, false);
  const exports = first.exports as { twice(n: number): number; where: string; dir: string; self: boolean };
  assert.equal(exports.twice(21), 42);
  assert.equal(exports.where, 'cli-main.cjs');
  assert.equal(exports.dir, join(file, '..'));
  assert.equal(exports.self, true, 'this is module.exports, as in CommonJS');
  await assert.rejects(readdir(cacheDir), 'nothing is written before save()');
  assert.equal(first.save(), true);
  assert.deepEqual(await readdir(cacheDir), ['cli-main-b1-test.v8cache']);
  assert.equal(loadInChild(file, cacheDir, 'b1'), 'used 42');
});

test('other build ids write their own caches; the newest sixteen are kept', async () => {
  const { file, cacheDir } = await bundle();
  const ids = Array.from({ length: 17 }, (_, i) => `b${String(i + 1).padStart(2, '0')}`);
  for (const [i, id] of ids.entries()) {
    if (i < 2) assert.equal(loadInChild(file, cacheDir, id), 'written 42');
    else assert.equal(loadWithCodeCache(file, cacheDir, id, 'test').save(), true);
    await new Promise((resolve) => setTimeout(resolve, 15)); // distinct modification times
  }
  assert.equal(loadInChild(file, cacheDir, 'b02'), 'used 42', 'another build keeps its cache meanwhile');
  const kept = (await readdir(cacheDir)).sort();
  assert.equal(kept.length, 16);
  assert.ok(!kept.includes('cli-main-b01-test.v8cache'), 'the oldest went');
  assert.ok(kept.includes('cli-main-b17-test.v8cache'));
});

test('data V8 refuses is replaced', async () => {
  const { file, cacheDir } = await bundle();
  assert.equal(loadInChild(file, cacheDir, 'b1'), 'written 42');
  await writeFile(join(cacheDir, 'cli-main-b1-test.v8cache'), 'not a code cache');
  assert.equal(loadInChild(file, cacheDir, 'b1'), 'written 42');
  assert.equal(loadInChild(file, cacheDir, 'b1'), 'used 42');
});

test('a cache directory that cannot be made still loads the bundle', async () => {
  const { file } = await bundle();
  const blocker = join(file, '..', 'a-file');
  await writeFile(blocker, '');
  const loaded = loadWithCodeCache(file, join(blocker, 'cache'), 'b1', 'test');
  assert.equal(loaded.save(), false);
  assert.equal((loaded.exports as { twice(n: number): number }).twice(5), 10);
});
