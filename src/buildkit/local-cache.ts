/**
 * `--cache-to type=local,dest=DIR` and `--cache-from type=local,src=DIR`, done like buildctl: the client
 * serves each directory as a content store over the session (store id `local:` + the path in the
 * attributes), the daemon reads and writes blobs through it, and the client keeps the directory's
 * index.json: it looks up the digest to import (by tag, default `latest`) before the build, and records
 * the exported cache manifest (the `cache.manifest` exporter response) after it.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CogError } from '../errors.js';
import { directoryProblem } from '../writable-dir.js';
import { type ContentStoreSpec, localCacheStoreId } from './content-store.js';

export interface CacheEntry {
  readonly Type: string;
  readonly Attrs: Record<string, string>;
}

interface IndexDescriptor {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface OciIndexFile {
  schemaVersion: number;
  mediaType?: string;
  manifests: IndexDescriptor[];
}

const imageNameAnnotation = 'io.containerd.image.name';
const refNameAnnotation = 'org.opencontainers.image.ref.name';
const indexMediaType = 'application/vnd.oci.image.index.v1+json';

export interface LocalCaches {
  /** the entries for the solve, local ones rewritten (absolute paths, the digest to import) */
  readonly imports: CacheEntry[];
  readonly exports: CacheEntry[];
  /** the content stores of the local caches, by store id (one content service serves them all) */
  readonly stores: Readonly<Record<string, ContentStoreSpec>>;
  /** After the build: records the exported cache manifest in each export directory's index.json. */
  finish(exporterResponse: Readonly<Record<string, string>>): Promise<void>;
}

async function readIndex(
  dir: string,
  hint = 'remove the directory to start an empty cache',
): Promise<OciIndexFile | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as OciIndexFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CogError(`the cache index ${join(dir, 'index.json')} is unreadable`, {
      hint,
      cause: err,
    });
  }
}

/** The manifest tagged `tag`, as buildctl's ociindex finds it. */
export function taggedManifest(index: OciIndexFile, tag: string): IndexDescriptor | undefined {
  return (
    index.manifests.find((m) => m.annotations?.[imageNameAnnotation] === tag) ??
    index.manifests.find((m) => m.annotations?.[refNameAnnotation] === tag)
  );
}

/** `index` with `manifest` tagged `tag`, replacing what had that tag. Pure. */
export function withTag(
  index: OciIndexFile | undefined,
  manifest: IndexDescriptor,
  tag: string,
): OciIndexFile {
  const kept = (index?.manifests ?? []).filter(
    (m) => m.annotations?.[refNameAnnotation] !== tag || m.annotations?.[imageNameAnnotation] !== undefined,
  );
  return {
    schemaVersion: index?.schemaVersion || 2,
    mediaType: index?.mediaType || indexMediaType,
    manifests: [
      ...kept,
      { ...manifest, annotations: { ...(manifest.annotations ?? {}), [refNameAnnotation]: tag } },
    ],
  };
}

async function writeIndex(dir: string, index: OciIndexFile): Promise<void> {
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const temp = join(dir, `index.json.${process.pid}.tmp`);
  await writeFile(temp, JSON.stringify(index));
  await rename(temp, join(dir, 'index.json'));
}

/**
 * Prepares the local entries of `imports` and `exports` (other types pass through unchanged). An import
 * whose directory or tag is missing is skipped with a warning, as buildctl does: the build runs uncached.
 */
export async function localCaches(
  imports: readonly CacheEntry[],
  exports: readonly CacheEntry[],
  options: { readonly cwd: string; readonly warn: (message: string) => void },
): Promise<LocalCaches> {
  const stores: Record<string, ContentStoreSpec> = {};
  const exportDirs = new Map<string, string>(); // dir → tag

  const outImports: CacheEntry[] = [];
  for (const entry of imports) {
    if (entry.Type !== 'local') {
      outImports.push(entry);
      continue;
    }
    if (!entry.Attrs.src) {
      throw new CogError('--cache-from type=local needs src=DIR', {
        hint: 'e.g. --cache-from type=local,src=.cache',
      });
    }
    const dir = resolve(options.cwd, entry.Attrs.src);
    const problem = await directoryProblem(dir);
    if (problem?.kind === 'file')
      throw new CogError(
        `--cache-from type=local,src=${entry.Attrs.src}: ${problem.path} is a file, not a cache directory`,
        { hint: 'name the directory a --cache-to type=local,dest=DIR wrote (an import only reads it)' },
      );
    let digest = entry.Attrs.digest;
    if (!digest) {
      const tag = entry.Attrs.tag ?? 'latest';
      const index = await readIndex(
        dir,
        'point src= at a cache directory --cache-to type=local wrote; an import only reads it, nothing needs removing',
      );
      const manifest = index && taggedManifest(index, tag);
      if (!manifest) {
        options.warn(
          `local cache import at ${dir} skipped: ${index ? `no cache tagged ${tag}` : 'no index.json'}`,
        );
        continue;
      }
      digest = manifest.digest;
    }
    stores[localCacheStoreId(dir)] = {
      root: dir,
      writable: stores[localCacheStoreId(dir)]?.writable ?? false,
    };
    outImports.push({ Type: 'local', Attrs: { ...entry.Attrs, src: dir, digest } });
  }

  const outExports: CacheEntry[] = [];
  for (const entry of exports) {
    if (entry.Type !== 'local') {
      outExports.push(entry);
      continue;
    }
    if (!entry.Attrs.dest) {
      throw new CogError('--cache-to type=local needs dest=DIR', {
        hint: 'e.g. --cache-to type=local,dest=.cache',
      });
    }
    const dir = resolve(options.cwd, entry.Attrs.dest);
    const problem = await directoryProblem(dir);
    if (problem?.kind === 'file')
      throw new CogError(
        `--cache-to type=local,dest=${entry.Attrs.dest}: ${problem.path} is a file, not a directory`,
        {
          hint: 'name a directory for the cache (it is made if missing), e.g. --cache-to type=local,dest=.cache',
        },
      );
    await mkdir(dir, { recursive: true });
    stores[localCacheStoreId(dir)] = { root: dir, writable: true };
    exportDirs.set(dir, entry.Attrs.tag ?? 'latest');
    outExports.push({ Type: 'local', Attrs: { ...entry.Attrs, dest: dir } });
  }

  return {
    imports: outImports,
    exports: outExports,
    stores,
    async finish(exporterResponse) {
      if (exportDirs.size === 0) return;
      const json = exporterResponse['cache.manifest'];
      if (!json) {
        options.warn('the daemon reported no exported cache manifest; the local cache index was not updated');
        return;
      }
      const manifest = JSON.parse(json) as IndexDescriptor;
      for (const [dir, tag] of exportDirs)
        await writeIndex(dir, withTag(await readIndex(dir), manifest, tag));
    },
  };
}
