/**
 * Loads a CommonJS bundle (the CLI's dist/cog-main.cjs) with a V8 code cache. Node 20 keeps no compile
 * cache for ES modules (module.enableCompileCache arrived in Node 22), and compiling the ~2 MB bundle
 * took ~45 ms of every command that loads it (CPU profile of a source-only `cog build`).
 *
 * The cache lives in the user's cache directory, one file per cog-ts build and command (a new build,
 * or V8 refusing the data — another Node version or other V8 flags — means compiling as before and
 * writing it anew). It is written when the command is done, so it holds the functions the command ran
 * as well as the bundle's top level. Any failure to read or write it only costs the compile.
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

export interface CachedLoad {
  readonly exports: unknown;
  /** whether V8 took the code from the cache */
  readonly fromCache: boolean;
  /**
   * Writes the cache when it was not used, from everything compiled so far: call it when the command
   * is done, so the functions it ran are in it. False when nothing was written.
   */
  save(): boolean;
}

const wrapperHead = '(function (exports, require, module, __filename, __dirname) { ';
const wrapperTail = '\n})';

function writeAtomically(file: string, data: Buffer): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, data);
  renameSync(temp, file);
}

/**
 * Caches kept per bundle (one per cog-ts build and command): a few builds used side by side (two
 * checkouts) do not evict each other.
 */
const keptCaches = 16;

/** Removes all but the newest `keptCaches` caches of the bundle (`<name>-<id>-<command>.v8cache`). */
function pruneOld(dir: string, name: string): void {
  const caches = readdirSync(dir)
    .filter((entry) => entry.startsWith(`${name}-`) && entry.endsWith('.v8cache'))
    .map((entry) => ({ path: join(dir, entry), mtime: statSync(join(dir, entry)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const old of caches.slice(keptCaches)) rmSync(old.path, { force: true });
}

/**
 * Runs `bundle` (CommonJS) and returns its exports. `cacheDir` holds `<name>-<buildId>-<variant>.v8cache`;
 * `variant` names what the process will run (the command), since the cache holds what it compiled.
 */
export function loadWithCodeCache(
  bundle: string,
  cacheDir: string,
  buildId: string,
  variant: string,
): CachedLoad {
  const name = bundle.replace(/^.*[\\/]/, '').replace(/\.c?js$/, '');
  const cacheFile = join(cacheDir, `${name}-${buildId}-${variant}.v8cache`);
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
  const fromCache = cachedData !== undefined && !script.cachedDataRejected;
  const save = () => {
    if (fromCache) return false;
    try {
      mkdirSync(cacheDir, { recursive: true });
      writeAtomically(cacheFile, script.createCachedData());
      pruneOld(cacheDir, name);
      return true;
    } catch {
      return false;
    }
  };
  return { exports: module.exports, fromCache, save };
}
