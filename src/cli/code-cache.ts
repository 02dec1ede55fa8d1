/**
 * Loads a CommonJS bundle (the CLI's dist/cog-main.cjs) with a V8 code cache. Node 20 keeps no compile
 * cache for ES modules (module.enableCompileCache arrived in Node 22), and compiling the ~3 MB bundle
 * took ~45 ms of every command that loads it (CPU profile of a source-only `cog build`).
 *
 * The cache lives in the user's cache directory, one file per cog-ts build, the newest four kept (a
 * new build, or V8 refusing the data — another Node version or other V8 flags — means compiling as
 * before and writing it anew). It is written right after the bundle's top level ran, before the command does anything,
 * so every run starts from the same state. Any failure to read or write it only costs the compile.
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

export interface CachedLoad {
  readonly exports: unknown;
  /** how the compile went: from the cache, or compiled (and the cache written, when it could be) */
  readonly cache: 'used' | 'written' | 'unwritable';
}

const wrapperHead = '(function (exports, require, module, __filename, __dirname) { ';
const wrapperTail = '\n})';

function writeAtomically(file: string, data: Buffer): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, data);
  renameSync(temp, file);
}

/** Caches kept per bundle: a few cog-ts builds used side by side (two checkouts) do not evict each other. */
const keptCaches = 4;

/** Removes all but the newest `keptCaches` caches of the bundle (`<name>-<id>.v8cache`). */
function pruneOld(dir: string, name: string): void {
  const caches = readdirSync(dir)
    .filter((entry) => entry.startsWith(`${name}-`) && entry.endsWith('.v8cache'))
    .map((entry) => ({ path: join(dir, entry), mtime: statSync(join(dir, entry)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const old of caches.slice(keptCaches)) rmSync(old.path, { force: true });
}

/**
 * Runs `bundle` (CommonJS) and returns its exports. `cacheDir` holds `<name>-<buildId>.v8cache`.
 */
export function loadWithCodeCache(bundle: string, cacheDir: string, buildId: string): CachedLoad {
  const name = bundle.replace(/^.*[\\/]/, '').replace(/\.c?js$/, '');
  const cacheName = `${name}-${buildId}.v8cache`;
  const cacheFile = join(cacheDir, cacheName);
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const source = readFileSync(bundle, 'utf8');
  const script = new Script(`${wrapperHead}${source}${wrapperTail}`, {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  });
  const module = { exports: {} as unknown };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  run.call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  if (cachedData && !script.cachedDataRejected) return { exports: module.exports, cache: 'used' };
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeAtomically(cacheFile, script.createCachedData());
    pruneOld(cacheDir, name);
    return { exports: module.exports, cache: 'written' };
  } catch {
    return { exports: module.exports, cache: 'unwritable' };
  }
}
