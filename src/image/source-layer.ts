/**
 * The source layer of a model image written by cog-ts itself, for a rebuild where nothing but the
 * project's files changed (build/source-rebuild.ts): the project as the build's context transfer sends
 * it (walkContext with the source step's exclude patterns), under `src/`, plus the plan's generated
 * files (`/src/.cog/openapi_schema.json`), as a gzipped tar owned by root — what BuildKit's copy of the
 * same context into `/src` holds, entry for entry. Files are streamed from disk through the tar
 * encoder, gzip and both hashes into `dest`; nothing is held whole in memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { tarEnd, tarHeader, tarPadding } from './tar-header.js';
import { type ContextEntry, walkContext } from '../buildkit/filesync.js';
import { fromGoMode } from '../buildkit/go-mode.js';
import { ContextFilter } from '../buildkit/patterns.js';

/** A file the plan writes into the source layer (absolute path in the image). */
export interface GeneratedFile {
  readonly path: string;
  readonly content: string;
  readonly mode?: number;
}

export interface SourceLayerSpec {
  readonly projectDir: string;
  /** the source step's exclude patterns (`.cog` and `.dockerignore`'s) */
  readonly exclude: readonly string[];
  readonly files: readonly GeneratedFile[];
}

export interface WrittenLayer {
  /** sha256 of the gzipped tar: the blob's digest */
  readonly digest: string;
  /** sha256 of the tar: the image config's diff_id */
  readonly diffId: string;
  /** bytes of the gzipped tar */
  readonly size: number;
  /**
   * the newest modification time in the project (whole seconds): the time of the directories and files
   * the layer makes itself, so the same project makes the same layer, byte for byte
   */
  readonly sourceDate: Date;
}

/** The project holds something a layer written here cannot carry (a device, a pipe, a socket). */
export class UnsupportedEntryError extends Error {
  constructor(
    readonly path: string,
    readonly type: string,
  ) {
    super(`${path} is a ${type}`);
    this.name = 'UnsupportedEntryError';
  }
}

/** Whole seconds, as the tar headers hold them (BuildKit's layers carry no sub-second times either). */
const seconds = (date: Date) => new Date(Math.floor(date.getTime() / 1000) * 1000);

/** An image path as a path in the archive (no leading slash). */
const inArchive = (path: string) => path.replace(/^\/+/, '');

/** A context entry's modification time (its stat carries nanoseconds, as a string). */
const modTime = (entry: ContextEntry) => new Date(Number(BigInt(entry.stat.modTime ?? '0') / 1_000_000n));

/** The directories (below `src/`) that `files` (archive paths) need, parents first. */
function generatedDirs(files: readonly GeneratedFile[]): string[] {
  const dirs = new Set<string>();
  for (const file of files) {
    const parts = file.path.split('/');
    for (let i = 2; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort();
}

/** The project's entries as the context transfer sends them, and the newest modification time among them. */
async function projectEntries(spec: SourceLayerSpec) {
  const entries: ContextEntry[] = [];
  let newestMs = 0;
  for await (const entry of walkContext(spec.projectDir, new ContextFilter({ exclude: [...spec.exclude] }))) {
    entries.push(entry);
    newestMs = Math.max(newestMs, modTime(entry).getTime());
  }
  return { entries, sourceDate: seconds(new Date(newestMs)) };
}

/** The layer's tar stream: `src/`, the generated files, then the project's entries below `src/`. */
async function* sourceTar(
  spec: SourceLayerSpec,
  entries: readonly ContextEntry[],
  date: Date,
  onBytes?: (done: number, total: number) => void,
): AsyncGenerator<Buffer> {
  const files = spec.files.map((file) => ({ ...file, path: inArchive(file.path) }));
  yield tarHeader({ path: 'src/', type: 'directory', mode: 0o755, mtime: date, size: 0 });
  const dirs = generatedDirs(files);
  for (const dir of dirs)
    yield tarHeader({ path: `${dir}/`, type: 'directory', mode: 0o755, mtime: date, size: 0 });
  const generated = new Set(files.map((f) => f.path));
  // the bytes the loop below streams: regular files' (a hard link's once), not those the plan replaces
  const streamed = (entry: ContextEntry) =>
    entry.file !== undefined && !entry.stat.linkname && !generated.has(`src/${entry.path}`);
  const total = entries.reduce((sum, e) => sum + (streamed(e) ? Number(e.stat.size ?? 0) : 0), 0);
  let done = 0;
  for (const file of files) {
    const content = Buffer.from(file.content, 'utf8');
    yield tarHeader({
      path: file.path,
      type: 'file',
      mode: file.mode ?? 0o644,
      mtime: date,
      size: content.length,
    });
    yield content;
    yield tarPadding(content.length);
  }
  const made = new Set(dirs);
  for (const entry of entries) {
    const path = `src/${entry.path}`;
    const { type, perm } = fromGoMode(entry.stat.mode ?? 0);
    const mtime = modTime(entry); // tar headers hold whole seconds
    if (type === 'dir') {
      // a directory the generated files made already: the copy merges into it
      if (!made.has(path))
        yield tarHeader({ path: `${path}/`, type: 'directory', mode: perm, mtime, size: 0 });
      continue;
    }
    // a project file where the plan writes one: the plan's wins, as its write comes after the copy
    if (generated.has(path)) continue;
    if (type === 'symlink') {
      yield tarHeader({
        path,
        type: 'symlink',
        linkpath: entry.stat.linkname ?? '',
        mode: perm,
        mtime,
        size: 0,
      });
      continue;
    }
    if (type !== 'file' || !entry.file) throw new UnsupportedEntryError(entry.path, type);
    if (entry.stat.linkname) {
      yield tarHeader({
        path,
        type: 'hardlink',
        linkpath: `src/${entry.stat.linkname}`,
        mode: perm,
        mtime,
        size: 0,
      });
      continue;
    }
    const size = Number(entry.stat.size ?? 0);
    yield tarHeader({ path, type: 'file', mode: perm, mtime, size });
    let sent = 0;
    for await (const chunk of createReadStream(entry.file, {
      highWaterMark: 1 << 20,
    }) as AsyncIterable<Buffer>) {
      // a file that grew since its lstat: the header promised `size` bytes
      const part = chunk.subarray(0, Math.max(0, size - sent));
      sent += part.length;
      if (part.length > 0) {
        done += part.length;
        onBytes?.(done, total);
        yield part;
      }
    }
    if (sent < size) throw new Error(`${entry.file} shrank while it was read into the source layer`);
    yield tarPadding(size);
  }
  yield tarEnd();
}

/** A pass-through stream that hashes (and counts) what goes by. */
class Tap extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

export interface SourceLayerWriting {
  /** stops the write (the pipeline fails with the signal's reason) */
  readonly signal?: AbortSignal | undefined;
  /**
   * the project's file bytes read into the layer so far, of `total` (the sizes of the files it streams,
   * known once the project was walked, before the first byte)
   */
  readonly onBytes?: ((done: number, total: number) => void) | undefined;
}

/** Writes the source layer to `dest` (a new file) and returns its digests and size. */
export async function writeSourceLayer(
  spec: SourceLayerSpec,
  dest: string,
  writing: SourceLayerWriting = {},
): Promise<WrittenLayer> {
  const { signal, onBytes } = writing;
  const { entries, sourceDate } = await projectEntries(spec);
  signal?.throwIfAborted();
  const tar = new Tap();
  const gzipped = new Tap();
  await pipeline(
    Readable.from(sourceTar(spec, entries, sourceDate, onBytes)),
    tar,
    createGzip(),
    gzipped,
    createWriteStream(dest, { flags: 'wx' }),
    ...(signal ? [{ signal }] : []),
  );
  return { digest: gzipped.digest(), diffId: tar.digest(), size: gzipped.bytes, sourceDate };
}
