/**
 * The session's FileSend service: where buildkitd delivers exports meant for the client.
 *
 * The daemon calls `FileSend/DiffCopy` once per export, with metadata `buildkit-attachable-exporter-id`
 * = the exporter's index in SolveRequest.Exporters. The one method carries two payloads:
 * - tar, oci and docker exporters send a tar stream as BytesMessage chunks, then half-close; we write
 *   the chunks to a Writable (a file, stdout...) as they come and end the call once it is flushed.
 * - the local exporter speaks fsutil's DiffCopy with us as the receiver: it sends one STAT per entry
 *   (parents first) and an empty STAT; we ask for each regular file by index (REQ), it streams DATA
 *   packets (an empty one ends a file); when everything is on disk we send FIN and it answers FIN.
 * So the method is registered with raw Buffers (see grpc-services.ts) and decoded here per target kind.
 *
 * Nothing is buffered whole: tar chunks go straight to the Writable (with backpressure), file data
 * straight to disk. Local files are written under a temporary name and renamed when complete.
 */
import { randomBytes } from 'node:crypto';
import {
  type FileHandle,
  chmod,
  link,
  lchown,
  lstat,
  lutimes,
  mkdir,
  open,
  rename,
  rm,
  symlink,
  unlink,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import * as grpc from '@grpc/grpc-js';
import type { fsutil_types_Packet, fsutil_types_Stat, moby_buildkit_v1_Exporter } from '../gen/types.js';
import { codec } from '../proto/schema.js';
import type { SessionService } from './session.js';
import { type EntryType, fromGoMode } from './go-mode.js';
import { writeTarget } from '../write-target.js';

const PACKET_STAT = 0;
const PACKET_REQ = 1;
const PACKET_DATA = 2;
const PACKET_FIN = 3;
const PACKET_ERR = 4;

const exporterIdKey = 'buildkit-attachable-exporter-id';
const exporterMetadataPrefix = 'exporter-md-';

type RawStream = grpc.ServerDuplexStream<Buffer, Buffer>;

/**
 * The call's incoming messages, with backpressure. Leaving the loop early (FIN, an error) must not
 * destroy the call: we still answer it with a status.
 */
function messages(call: RawStream): AsyncIterable<Buffer> {
  return { [Symbol.asyncIterator]: () => call.iterator({ destroyOnReturn: false }) };
}

// ---------------------------------------------------------------------------------------------------
// Pure helpers

/**
 * Checks a path received from the daemon: relative, '/'-separated, clean (no empty, `.` or `..`
 * segments), no NUL. Returns it unchanged; throws otherwise.
 */
export function safeRelativePath(path: string): string {
  const bad =
    path === '' ||
    path.startsWith('/') ||
    path.includes('\0') ||
    path.split('/').some((part) => part === '' || part === '.' || part === '..');
  if (bad) throw new Error(`export sent an unsafe path ${JSON.stringify(path)}`);
  return path;
}

/** The parent of a clean relative path; '' is the export root. */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** A sibling name for writing `path` before it is renamed into place. */
function tempPath(path: string): string {
  return join(dirname(path), `.cogts-tmp-${randomBytes(6).toString('hex')}-${basename(path)}`.slice(0, 200));
}

/** ns since the epoch (as decoded: a number, or a decimal string) to fractional seconds for utimes. */
function seconds(ns: number | string | undefined): number {
  return Number(ns ?? 0) / 1e9;
}

// ---------------------------------------------------------------------------------------------------
// Targets

/** Exporter response values the daemon passes along (containerimage.digest, image.name...). */
export type ExportMetadata = Record<string, string>;

/** A tar stream (tar, oci or docker exporter) written to a Writable. */
export interface TarTarget {
  readonly kind: 'tar';
  /** The Writable for one export; undefined answers ALREADY_EXISTS, which the daemon takes as "skip". */
  readonly open: (metadata: ExportMetadata) => Writable | undefined | Promise<Writable | undefined>;
  /** end the Writable when the tar is complete (default true); false only waits for it to flush */
  readonly end?: boolean;
}

/** A filesystem (local exporter) written into a directory, merged with what is there. */
export interface LocalTarget {
  readonly kind: 'local';
  readonly dir: string;
  /** apply the exported uid/gid (default: only when running as root) */
  readonly chown?: boolean;
  /** called for entries Node cannot create (devices, fifos, sockets); they are skipped */
  readonly onSkipped?: (path: string, type: EntryType) => void;
}

export type ExportTarget = TarTarget | LocalTarget;

/**
 * A Writable that writes to a temporary sibling of `path` and renames it to `path` when ended, so a
 * failed export never leaves a partial file under the final name. Destroying it removes the temporary.
 * A symlink at `path` is written through (its target is replaced, atomically, the link kept), and a
 * device, FIFO or socket is written straight into (`-o dest=/dev/null`), as `docker save -o` does: a
 * rename would replace it with a regular file.
 */
export class AtomicFileWriter extends Writable {
  /** where the data goes first: a temporary file, or the destination itself when it is no regular file */
  private temp: string | undefined;
  private target: string | undefined;
  private handle: FileHandle | undefined;
  private done = false;

  constructor(readonly path: string) {
    super();
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.openDestination().then(
      (handle) => {
        this.handle = handle;
        callback();
      },
      (err: Error) => callback(err),
    );
  }

  private async openDestination(): Promise<FileHandle> {
    const target = await writeTarget(this.path);
    const existing = await lstat(target).catch(() => undefined);
    if (existing && !existing.isFile() && !existing.isDirectory()) return open(target, 'w');
    this.target = target;
    this.temp = tempPath(target);
    return open(this.temp, 'wx', 0o666);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    writeAll(this.handle!, chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const handle = this.handle!;
    this.handle = undefined;
    handle
      .close()
      .then(() => (this.temp && this.target ? rename(this.temp, this.target) : undefined))
      .then(() => {
        this.done = true;
        callback();
      }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.done) {
      callback(error);
      return;
    }
    const handle = this.handle;
    this.handle = undefined;
    void discard(handle, this.temp).then(() => callback(error));
  }
}

/** Closes and removes a temporary file, ignoring errors (it may not exist). */
async function discard(handle: FileHandle | undefined, temp: string | undefined): Promise<void> {
  await handle?.close().catch(() => undefined);
  if (temp !== undefined) await unlink(temp).catch(() => undefined);
}

async function writeAll(handle: FileHandle, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

/** A tar target that writes each export to `path`, atomically. */
export function fileTarget(path: string): TarTarget {
  return { kind: 'tar', open: () => new AtomicFileWriter(path) };
}

/** A tar target that writes into a Writable the caller keeps open (e.g. process.stdout). */
export function streamTarget(stream: Writable): TarTarget {
  return { kind: 'tar', open: () => stream, end: false };
}

// ---------------------------------------------------------------------------------------------------
// Tar streams

const bytesCodec = codec('moby.buildkit.v1.BytesMessage');

function exporterMetadata(metadata: grpc.Metadata): ExportMetadata {
  const out: ExportMetadata = {};
  for (const [key, value] of Object.entries(metadata.getMap())) {
    if (key.startsWith(exporterMetadataPrefix)) out[key.slice(exporterMetadataPrefix.length)] = String(value);
  }
  return out;
}

/** The error that stopped `stream`, if it is no longer writable. */
function brokenOutput(stream: Writable): Error | undefined {
  if (!stream.destroyed && !stream.writableEnded) return undefined;
  return stream.errored ?? new Error('export output closed early');
}

/** Resolves when `stream` can take more, rejects if it fails first (or already has). */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const broken = brokenOutput(stream);
    if (broken) {
      reject(broken);
      return;
    }
    if (!stream.writableNeedDrain) {
      resolve();
      return;
    }
    const done = (err?: Error) => {
      stream.off('drain', onDrain);
      stream.off('error', done);
      stream.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(brokenOutput(stream) ?? new Error('export output closed early'));
    stream.on('drain', onDrain);
    stream.on('error', done);
    stream.on('close', onClose);
  });
}

/** Resolves when everything written so far to a stream we do not end has been handed on. */
function flushed(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Waits until a call whose messages ended is known to be half-closed rather than cancelled. A reset
 * (cancelled) call ends its message stream too, and grpc-js reports the cancel only a couple of event
 * loop turns later (two setImmediate turns, measured); a daemon that finished sent END_STREAM and
 * waits for our status, so waiting a little longer costs nothing.
 */
async function settled(call: RawStream): Promise<void> {
  for (let turn = 0; turn < 4 && !call.cancelled; turn++) await new Promise((r) => setImmediate(r));
  if (call.cancelled) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      call.off('cancelled', done);
      resolve();
    };
    const timer = setTimeout(done, 20);
    call.once('cancelled', done);
  });
}

async function receiveTar(call: RawStream, target: TarTarget): Promise<void> {
  const out = await target.open(exporterMetadata(call.metadata));
  if (!out) throw Object.assign(new Error('target already exists'), { code: grpc.status.ALREADY_EXISTS });
  const end = target.end ?? true;
  // an output can fail at any time (a file that cannot be created fails after open() returned)
  const onError = () => undefined;
  out.on('error', onError);
  try {
    for await (const raw of messages(call)) {
      const data = bytesCodec.decode(raw).data;
      if (!data || data.length === 0) continue;
      const broken = brokenOutput(out);
      if (broken) throw broken;
      if (!out.write(data)) await drained(out);
    }
    await settled(call);
    if (call.cancelled) throw new Error('export cancelled by the daemon');
    if (end) {
      out.end();
      await finished(out);
    } else await flushed(out);
  } catch (err) {
    // without an error: ours would reach an 'error' event nobody listens to any more
    if (end) out.destroy();
    throw err;
  } finally {
    // an output we end is ours: its 'error' event may still be on its way (stream.errored is set first)
    if (!end) out.off('error', onError);
  }
}

// ---------------------------------------------------------------------------------------------------
// Local directories (fsutil receiver)

const packetCodec = codec('fsutil.types.Packet');

interface PendingFile {
  readonly path: string;
  readonly abs: string;
  readonly temp: string;
  readonly stat: fsutil_types_Stat;
  readonly perm: number;
  handle?: FileHandle;
}

/** Replaces whatever is at `abs` (file, symlink, or a whole directory) with the entry at `temp`. */
async function replace(temp: string, abs: string): Promise<void> {
  const existing = await lstat(abs).catch(() => undefined);
  if (existing?.isDirectory()) await rm(abs, { recursive: true, force: true });
  await rename(temp, abs);
}

class LocalReceiver {
  /** directories of this stream that are real directories on disk ('' = the root) */
  private readonly dirs = new Set<string>(['']);
  private readonly seen = new Set<string>();
  /** regular files of this stream by path, for hardlink targets */
  private readonly regular = new Set<string>();
  /** requested files by STAT index */
  private readonly files = new Map<number, PendingFile>();
  private readonly hardlinks: { abs: string; target: string; stat: fsutil_types_Stat }[] = [];
  private readonly dirMetadata: { abs: string; stat: fsutil_types_Stat; perm: number }[] = [];
  private readonly chown: boolean;
  private nextId = 0;
  private statsDone = false;
  private finSent = false;

  constructor(
    private readonly call: RawStream,
    private readonly root: string,
    private readonly target: LocalTarget,
  ) {
    this.chown = target.chown ?? process.getuid?.() === 0;
  }

  private send(packet: fsutil_types_Packet): void {
    // never wait for 'drain' here: the daemon may be blocked sending us DATA we have not read yet
    this.call.write(Buffer.from(packetCodec.encode(packet)));
  }

  async run(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    try {
      for await (const raw of messages(this.call)) {
        const packet = packetCodec.decode(raw);
        switch (packet.type ?? PACKET_STAT) {
          case PACKET_STAT:
            if (packet.stat) await this.onStat(packet.stat);
            else {
              this.statsDone = true;
              await this.maybeFinish();
            }
            break;
          case PACKET_DATA:
            await this.onData(packet.ID ?? 0, packet.data);
            break;
          case PACKET_FIN:
            if (!this.finSent) throw new Error('export sent FIN before the transfer was complete');
            return;
          case PACKET_ERR:
            throw new Error(`error from sender: ${Buffer.from(packet.data ?? []).toString()}`);
          default:
            throw new Error(`unexpected packet type ${packet.type ?? 0} in a local export`);
        }
      }
      throw new Error(
        this.call.cancelled ? 'export cancelled by the daemon' : 'export stream ended before FIN',
      );
    } catch (err) {
      if (!this.call.cancelled) {
        this.send({ type: PACKET_ERR, data: Buffer.from(err instanceof Error ? err.message : String(err)) });
      }
      await this.cleanup();
      throw err;
    }
  }

  private async onStat(stat: fsutil_types_Stat): Promise<void> {
    const id = this.nextId++;
    const path = safeRelativePath(stat.path ?? '');
    if (this.seen.has(path)) throw new Error(`export sent ${path} twice`);
    this.seen.add(path);
    const parent = parentPath(path);
    if (!this.dirs.has(parent)) throw new Error(`export sent ${path} before its directory`);
    const abs = join(this.root, path);
    const { type, perm } = fromGoMode(stat.mode ?? 0);
    switch (type) {
      case 'dir': {
        const existing = await lstat(abs).catch(() => undefined);
        if (existing && !existing.isDirectory()) await unlink(abs);
        // owner-writable until the end, so children can be created; final mode applied in maybeFinish
        if (!existing?.isDirectory()) {
          await mkdir(abs, { mode: 0o700 }).catch(async (err: NodeJS.ErrnoException) => {
            // another export into the same dir (one per platform) may have just made it
            if (err.code !== 'EEXIST' || !(await lstat(abs)).isDirectory()) throw err;
          });
        }
        this.dirs.add(path);
        this.dirMetadata.push({ abs, stat, perm });
        return;
      }
      case 'symlink': {
        const temp = tempPath(abs);
        await symlink(stat.linkname ?? '', temp);
        try {
          if (this.chown) await lchown(temp, stat.uid ?? 0, stat.gid ?? 0);
          await lutimes(temp, seconds(stat.modTime), seconds(stat.modTime));
          await replace(temp, abs);
        } catch (err) {
          await unlink(temp).catch(() => undefined);
          throw err;
        }
        return;
      }
      case 'file':
        if (stat.linkname) {
          const target = safeRelativePath(stat.linkname);
          if (!this.regular.has(target)) throw new Error(`export sent hardlink ${path} to unknown ${target}`);
          this.hardlinks.push({ abs, target: join(this.root, target), stat });
          return;
        }
        this.regular.add(path);
        this.files.set(id, { path, abs, temp: tempPath(abs), stat, perm });
        this.send({ type: PACKET_REQ, ID: id });
        return;
      default:
        this.target.onSkipped?.(path, type);
    }
  }

  private async onData(id: number, data: Uint8Array | undefined): Promise<void> {
    const file = this.files.get(id);
    if (!file) throw new Error(`export sent data for unknown file ${id}`);
    file.handle ??= await open(file.temp, 'wx', 0o600);
    if (data && data.length > 0) {
      await writeAll(file.handle, data);
      return;
    }
    // end of this file: metadata on the temporary, then rename into place
    const handle = file.handle;
    if (this.chown) await handle.chown(file.stat.uid ?? 0, file.stat.gid ?? 0);
    await handle.chmod(file.perm);
    const mtime = seconds(file.stat.modTime);
    await handle.utimes(mtime, mtime);
    await handle.close();
    delete file.handle;
    await replace(file.temp, file.abs);
    this.files.delete(id);
    await this.maybeFinish();
  }

  /** Once every stat is in and every requested file is on disk: hardlinks, directory metadata, FIN. */
  private async maybeFinish(): Promise<void> {
    if (!this.statsDone || this.files.size > 0 || this.finSent) return;
    for (const { abs, target, stat } of this.hardlinks) {
      const temp = tempPath(abs);
      await link(target, temp);
      try {
        if (this.chown) await lchown(temp, stat.uid ?? 0, stat.gid ?? 0);
        await replace(temp, abs);
      } catch (err) {
        await unlink(temp).catch(() => undefined);
        throw err;
      }
    }
    // deepest first is not required (utimes on a child does not touch its parent) but keeps chmod of a
    // read-only parent from mattering
    for (const { abs, stat, perm } of this.dirMetadata.reverse()) {
      if (this.chown) await lchown(abs, stat.uid ?? 0, stat.gid ?? 0);
      await chmod(abs, perm);
      await lutimes(abs, seconds(stat.modTime), seconds(stat.modTime));
    }
    this.finSent = true;
    this.send({ type: PACKET_FIN });
  }

  /** Removes the temporaries of files that never completed. */
  private async cleanup(): Promise<void> {
    for (const file of this.files.values()) await discard(file.handle, file.temp);
    this.files.clear();
  }
}

// ---------------------------------------------------------------------------------------------------
// The service

function fail(call: RawStream, err: unknown): void {
  if (call.cancelled || call.destroyed) return;
  const error = err instanceof Error ? err : new Error(String(err));
  const code = (error as { code?: unknown }).code;
  call.emit('error', {
    code: typeof code === 'number' ? code : grpc.status.UNKNOWN,
    details: error.message,
  });
}

/** A FileSend service delivering export i (SolveRequest.Exporters[i]) to `targets[i]`. */
export function fileSendService(targets: readonly (ExportTarget | undefined)[]): SessionService {
  return {
    name: 'moby.filesync.v1.FileSend',
    implementation: {
      DiffCopy: (call: RawStream) => {
        const id = Number.parseInt(String(call.metadata.get(exporterIdKey)[0] ?? '0'), 10);
        const target = targets[Number.isNaN(id) ? 0 : id];
        if (!target) {
          fail(call, Object.assign(new Error(`exporter ${id} not found`), { code: grpc.status.NOT_FOUND }));
          return;
        }
        const done =
          target.kind === 'tar'
            ? receiveTar(call, target)
            : new LocalReceiver(call, target.dir, target).run();
        done.then(
          () => call.end(),
          (err: unknown) => fail(call, err),
        );
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Exporters with their targets, indexes kept aligned

/** Where a tar stream goes: a file path (written atomically), a Writable we leave open, or a factory. */
export type TarOutput = string | Writable | TarTarget['open'];

export type ExportSpec =
  /** pushed or stored by the daemon; nothing comes back to the client */
  | { readonly type: 'image'; readonly attrs: Readonly<Record<string, string>> }
  /**
   * an OCI image written blob by blob into the session's content store "export" (tar=false): the
   * daemon skips blobs the store has. The caller serves that store and files the manifest afterwards.
   */
  | { readonly type: 'oci-store'; readonly attrs: Readonly<Record<string, string>> }
  /** an OCI or docker image tarball (set attrs.name for docker's RepoTags), or the filesystem as a tar */
  | {
      readonly type: 'oci' | 'docker' | 'tar';
      readonly output: TarOutput;
      readonly attrs?: Readonly<Record<string, string>>;
    }
  /** the filesystem into a directory */
  | {
      readonly type: 'local';
      readonly dir: string;
      readonly attrs?: Readonly<Record<string, string>>;
      readonly chown?: boolean;
      readonly onSkipped?: LocalTarget['onSkipped'];
    };

function tarTarget(output: TarOutput): TarTarget {
  if (typeof output === 'string') return fileTarget(output);
  if (output instanceof Writable) return streamTarget(output);
  return { kind: 'tar', open: output };
}

/**
 * The SolveRequest exporters for `specs` and the FileSend service that receives them, index for index.
 * Pass `exporters` to solve() and `service` to Session.start().
 */
export function exportsFor(specs: readonly ExportSpec[]): {
  exporters: moby_buildkit_v1_Exporter[];
  service: SessionService;
} {
  const exporters: moby_buildkit_v1_Exporter[] = [];
  const targets: (ExportTarget | undefined)[] = [];
  for (const spec of specs) {
    const attrs: Record<string, string> = { ...(spec.attrs ?? {}) };
    switch (spec.type) {
      case 'image':
        targets.push(undefined);
        break;
      case 'oci-store':
        targets.push(undefined);
        exporters.push({ Type: 'oci', Attrs: { ...attrs, tar: 'false' } });
        continue;
      case 'oci':
      case 'docker':
        if (attrs.tar === 'false')
          throw new Error(`${spec.type} export with tar=false needs a content store`);
        targets.push(tarTarget(spec.output));
        break;
      case 'tar':
        targets.push(tarTarget(spec.output));
        break;
      case 'local':
        targets.push({
          kind: 'local',
          dir: spec.dir,
          ...(spec.chown !== undefined ? { chown: spec.chown } : {}),
          ...(spec.onSkipped ? { onSkipped: spec.onSkipped } : {}),
        });
        break;
    }
    exporters.push({ Type: spec.type, Attrs: attrs });
  }
  return { exporters, service: fileSendService(targets) };
}
