/**
 * A containerd-style content store over an OCI layout directory: committed blobs live in
 * blobs/sha256/<hex>; writes go to a temp file under ingest/, hashed as they arrive, and are renamed into
 * place only once their digest (and size, when known) is verified. Blobs are read as streams, in ranges,
 * never whole. One instance serves one directory; its open writes are its own state, nothing global.
 */
import { type Hash, createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

export type ContentErrorKind =
  | 'not-found'
  | 'already-exists'
  | 'unavailable'
  | 'failed-precondition'
  | 'out-of-range'
  | 'invalid-argument'
  | 'permission-denied';

/** A content store refusal, with the kind the gRPC service turns into a status code. */
export class ContentError extends Error {
  constructor(
    readonly kind: ContentErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'ContentError';
  }
}

export interface BlobInfo {
  readonly digest: string;
  readonly size: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface IngestStatus {
  readonly ref: string;
  readonly offset: number;
  readonly total: number;
  readonly expected: string;
  readonly startedAt: Date;
  readonly updatedAt: Date;
}

/** Bytes per chunk when streaming a blob. */
export const readChunkSize = 1024 * 1024;

/** The hex of a `sha256:` digest, or a ContentError. */
function sha256Hex(digest: string): string {
  const match = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!match?.[1]) throw new ContentError('invalid-argument', `unsupported or malformed digest "${digest}"`);
  return match[1];
}

/** One open write, held by one Write stream at a time. */
export class Ingest {
  private hash: Hash = createHash('sha256');
  private written = 0;
  private finished = false;
  readonly startedAt = new Date();
  updatedAt = this.startedAt;

  constructor(
    private readonly dir: ContentDir,
    readonly ref: string,
    private readonly path: string,
    private readonly file: FileHandle,
    public total: number,
    public expected: string,
  ) {}

  get offset(): number {
    return this.written;
  }

  /** sha256 of the bytes so far */
  digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }

  status(): IngestStatus {
    return {
      ref: this.ref,
      offset: this.written,
      total: this.total,
      expected: this.expected,
      startedAt: this.startedAt,
      updatedAt: this.updatedAt,
    };
  }

  /** Appends `data` at `offset`: the current offset, or 0 to start over. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    if (offset === 0 && this.written > 0) {
      await this.file.truncate(0);
      this.hash = createHash('sha256');
      this.written = 0;
    } else if (offset !== this.written) {
      throw new ContentError('out-of-range', `write @${offset} must occur at current offset ${this.written}`);
    }
    if (data.length === 0) return;
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.file.write(data, done, data.length - done, this.written + done);
      done += bytesWritten;
    }
    this.hash.update(data);
    this.written += data.length;
    this.updatedAt = new Date();
  }

  /**
   * Verifies size (when `total` > 0) and digest (when `expected` is set) and moves the blob into place.
   * Returns the digest of what was written.
   */
  async commit(total: number, expected: string): Promise<string> {
    const actual = `sha256:${this.hash.digest('hex')}`;
    this.finished = true;
    try {
      await this.file.close();
      if (total > 0 && total !== this.written) {
        throw new ContentError(
          'failed-precondition',
          `unexpected commit size ${this.written}, expected ${total}`,
        );
      }
      if (expected && expected !== actual) {
        throw new ContentError(
          'failed-precondition',
          `unexpected commit digest ${actual}, expected ${expected}`,
        );
      }
      const target = this.dir.blobPath(actual);
      if (await exists(target)) throw new ContentError('already-exists', `content ${actual} already exists`);
      await rename(this.path, target);
      return actual;
    } finally {
      await rm(this.path, { force: true });
      this.dir.release(this);
    }
  }

  /** Drops the write and its temp file. */
  async abort(): Promise<void> {
    if (!this.finished) {
      this.finished = true;
      await this.file.close().catch(() => {});
    }
    await rm(this.path, { force: true });
    this.dir.release(this);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export class ContentDir {
  private readonly ingests = new Map<string, Ingest>();

  /** `writable: false` refuses writes and deletes (e.g. the image store, which BuildKit only reads). */
  constructor(
    readonly root: string,
    readonly writable: boolean,
  ) {}

  blobPath(digest: string): string {
    return join(this.root, 'blobs', 'sha256', sha256Hex(digest));
  }

  async info(digest: string): Promise<BlobInfo> {
    const path = this.blobPath(digest);
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new Error('not a file');
      return { digest, size: st.size, createdAt: st.birthtime, updatedAt: st.mtime };
    } catch {
      throw new ContentError('not-found', `content digest ${digest}: not found`);
    }
  }

  /**
   * A stream of `size` bytes of the blob from `offset` (to the end when size is 0 or reaches past it),
   * read in chunks of readChunkSize. Returns the blob's size too.
   */
  async read(
    digest: string,
    offset: number,
    size: number,
  ): Promise<{ stream: Readable; start: number; length: number }> {
    const info = await this.info(digest);
    const start = Math.max(0, offset);
    if (start > info.size) {
      throw new ContentError('out-of-range', `read past object length ${info.size} bytes`);
    }
    const length = size <= 0 || start + size > info.size ? info.size - start : size;
    // createReadStream's end is inclusive and must not come before start: an empty range (e.g. a read
    // at the very end, which readers do to probe for EOF) is an empty stream
    const stream =
      length > 0
        ? createReadStream(this.blobPath(digest), {
            start,
            end: start + length - 1,
            highWaterMark: readChunkSize,
          })
        : Readable.from([]);
    return { stream, start, length };
  }

  /** Every committed blob. */
  async list(): Promise<BlobInfo[]> {
    let names: string[];
    try {
      names = await readdir(join(this.root, 'blobs', 'sha256'));
    } catch {
      return [];
    }
    const infos: BlobInfo[] = [];
    for (const name of names.filter((n) => /^[0-9a-f]{64}$/.test(n)).sort()) {
      try {
        infos.push(await this.info(`sha256:${name}`));
      } catch {
        // removed meanwhile
      }
    }
    return infos;
  }

  async delete(digest: string): Promise<void> {
    if (!this.writable) throw new ContentError('permission-denied', `the store ${this.root} is read-only`);
    await this.info(digest);
    await rm(this.blobPath(digest), { force: true });
  }

  /**
   * Opens (locks) the write `ref`. An `expected` digest already stored is AlreadyExists, which writers
   * take as "nothing to do"; a ref another stream holds is Unavailable, which writers retry.
   */
  async openIngest(ref: string, total: number, expected: string): Promise<Ingest> {
    if (!this.writable) throw new ContentError('permission-denied', `the store ${this.root} is read-only`);
    if (!ref) throw new ContentError('invalid-argument', 'first message must have a reference');
    if (expected) await this.refuseExisting(expected);
    if (this.ingests.has(ref)) throw new ContentError('unavailable', `ref ${ref} locked`);
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(this.root, 'ingest'), { recursive: true });
    const path = join(this.root, 'ingest', `${randomBytes(12).toString('hex')}.tmp`);
    const file = await open(path, 'w+');
    const ingest = new Ingest(this, ref, path, file, total, expected);
    this.ingests.set(ref, ingest);
    return ingest;
  }

  /** AlreadyExists when `digest` is stored. */
  async refuseExisting(digest: string): Promise<void> {
    if (await exists(this.blobPath(digest))) {
      throw new ContentError('already-exists', `blob with expected digest ${digest} exists`);
    }
  }

  /** @internal called by an ingest once it is committed or aborted */
  release(ingest: Ingest): void {
    if (this.ingests.get(ingest.ref) === ingest) this.ingests.delete(ingest.ref);
  }

  status(ref: string): IngestStatus {
    const ingest = this.ingests.get(ref);
    if (!ingest) throw new ContentError('not-found', `no write in progress for ref ${ref}`);
    return ingest.status();
  }

  statuses(): IngestStatus[] {
    return [...this.ingests.values()].map((i) => i.status());
  }

  async abort(ref: string): Promise<void> {
    const ingest = this.ingests.get(ref);
    if (!ingest) throw new ContentError('not-found', `no write in progress for ref ${ref}`);
    await ingest.abort();
  }
}
