/**
 * The session's FileSync service: sends a local directory to buildkitd with fsutil's DiffCopy protocol.
 *
 * We stat every entry (depth-first, each directory's entries sorted byte-wise, a directory before its
 * children) and send one STAT packet each, then an empty STAT. The daemon compares them with what it
 * has and asks for the files it lacks by index (REQ); we stream those as DATA packets, an empty DATA
 * ending each file, several files at a time. FIN from the daemon is answered with FIN. File contents
 * are streamed from disk in chunks; only the list of paths is kept in memory.
 *
 * The daemon passes the local source's include/exclude patterns and follow paths as request metadata;
 * like fsutil, we apply them while walking (see patterns.ts). A second path to an inode already sent
 * goes as a hardlink: a regular-file STAT whose linkname is the first path.
 */
import { type BigIntStats, closeSync, lstatSync, openSync, readSync } from 'node:fs';
import { open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { fsutil_types_Packet, fsutil_types_Stat } from '../gen/types.js';
import { BufferPool, encodeAroundPayload, varintField } from './buffer-pool.js';
import { type ContextFilter, type DirFilterState, byteOrder, contextFilter } from './patterns.js';
import type { SessionService } from './session.js';
import { toGoMode } from './go-mode.js';

const PACKET_STAT = 0;
const PACKET_REQ = 1;
const PACKET_DATA = 2;
const PACKET_FIN = 3;
const PACKET_ERR = 4;

/** Bytes per DATA packet. */
const chunkSize = 128 * 1024;
/** Files streamed at the same time (fsutil: 4). */
const parallelFiles = 4;
/** Room in front of the file bytes in a read buffer for a DATA packet's other fields. */
export const dataHeadroom = 16;
/** Packet.data: field 4, length-delimited. */
const dataTag = (4 << 3) | 2;

/** The fields of a DATA packet before its data, in field-number order: type (1), ID (3). */
function dataPrefix(id: number): number[] {
  return [0x08, PACKET_DATA, ...varintField(3, id)];
}

/** One entry of a context, as sent. */
export interface ContextEntry {
  readonly path: string;
  readonly stat: fsutil_types_Stat;
  /** absolute path, for regular files (hardlinks included) only */
  readonly file?: string;
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * The entries of the context `root` in fsutil's order (depth-first, names sorted byte-wise within each
 * directory), filtered like fsutil filters them: a directory that is not sent itself is still sent,
 * before its first entry that is. Entries that vanish during the walk, and sockets, are left out.
 */
export async function* walkContext(root: string, filter?: ContextFilter): AsyncGenerator<ContextEntry> {
  /** directories walked but not sent (yet): sent when something below them is */
  const pending: ContextEntry[] = [];
  /** `dev:ino` of regular files with several links -> the first path sent */
  const inodes = new Map<string, string>();

  const entry = async (path: string, abs: string, st: BigIntStats): Promise<ContextEntry> => {
    // mtimes in full nanoseconds (past 2^53, so as a string): the daemon's differ compares them
    const stat: fsutil_types_Stat = { path, mode: toGoMode(st), modTime: st.mtimeNs.toString() };
    if (st.isSymbolicLink()) {
      stat.linkname = await readlink(abs);
      stat.size = Number(st.size);
    } else if (st.isFile()) {
      stat.size = Number(st.size);
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = inodes.get(key);
        // as fsutil: the link keeps its size, the daemon links it to the first path instead of asking
        if (first !== undefined) stat.linkname = first;
        else inodes.set(key, path);
      }
      return { path, stat, file: abs };
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      stat.devmajor = Number((st.rdev >> 8n) & 0xfffn);
      stat.devminor = Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xfff00n));
    }
    return { path, stat };
  };

  async function* walkDir(rel: string, state: DirFilterState): AsyncGenerator<ContextEntry> {
    let names: string[];
    try {
      names = await readdir(join(root, rel));
    } catch (err) {
      if (rel !== '' && isNotFound(err)) return;
      throw err;
    }
    names.sort(byteOrder);
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      let st: BigIntStats;
      try {
        // sync: a metadata call costs less than a thread-pool round trip
        st = lstatSync(abs, { bigint: true });
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      // a socket has no content to send, and the daemon's receiver waits for data it cannot ask for:
      // left out, as Docker's context archive leaves sockets out
      if (st.isSocket()) continue;
      const isDir = st.isDirectory();
      const checked = filter?.check(path, isDir, state);
      if (checked?.decision === 'skip') continue;
      if (checked?.decision === 'hide') {
        if (!isDir) continue;
        pending.push(await entry(path, abs, st));
        yield* walkDir(path, checked.state);
        if (pending[pending.length - 1]?.path === path) pending.pop();
        continue;
      }
      for (const parent of pending) yield parent;
      pending.length = 0;
      yield await entry(path, abs, st);
      if (isDir) yield* walkDir(path, checked?.state ?? {});
    }
  }

  yield* walkDir('', {});
}

type PacketStream = grpc.ServerDuplexStream<fsutil_types_Packet, fsutil_types_Packet>;

/**
 * Writes a packet, waiting for the stream to drain when its buffer is full. `written` is called once
 * the packet has been serialised (its data may then be reused).
 */
function write(
  call: PacketStream,
  packet: fsutil_types_Packet | Buffer,
  written?: () => void,
): Promise<void> {
  return new Promise((resolve) => {
    // a Buffer is an already-encoded Packet, which the service's serializer passes through
    if (call.write(packet as fsutil_types_Packet, written)) resolve();
    else call.once('drain', resolve);
  });
}

/**
 * The DATA packet for file `id` whose `length` bytes were read into `buffer` after `dataHeadroom`
 * bytes: encoded in place around them (a view of `buffer`, no copy).
 */
export function dataPacketInPlace(buffer: Buffer, length: number, id: number): Buffer {
  return encodeAroundPayload(buffer, dataHeadroom, length, dataPrefix(id), dataTag);
}

/** Sends one buffer read from a file as a DATA packet; the buffer returns to the pool once framed. */
function sendChunk(call: PacketStream, id: number, buffer: Buffer, length: number, buffers: BufferPool) {
  return write(call, dataPacketInPlace(buffer, length, id), () => buffers.give(buffer));
}

/**
 * A file that fits one buffer is read synchronously: a thread-pool round trip each for open, read and
 * close costs more than reading a small cached file. (A file that grew since its STAT is cut there.)
 */
async function sendSmallFile(call: PacketStream, id: number, file: string, buffers: BufferPool) {
  const buffer = await buffers.take();
  let length = 0;
  try {
    const fd = openSync(file, 'r');
    try {
      length = readSync(fd, buffer, dataHeadroom, buffers.payload, null);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    // as fsutil: a file that cannot be opened any more arrives empty
    if (!isNotFound(err)) {
      buffers.give(buffer);
      throw err;
    }
  }
  if (length > 0) await sendChunk(call, id, buffer, length, buffers);
  else buffers.give(buffer);
}

async function sendLargeFile(
  call: PacketStream,
  id: number,
  file: string,
  buffers: BufferPool,
  expectedSize: number,
) {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  try {
    let sent = 0;
    for (;;) {
      const buffer = await buffers.take();
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, dataHeadroom, buffers.payload, null));
      } catch (err) {
        buffers.give(buffer);
        throw err;
      }
      if (bytesRead === 0) {
        buffers.give(buffer);
        break;
      }
      sent += bytesRead;
      await sendChunk(call, id, buffer, bytesRead, buffers);
      // a short read that completes the size we announced is the end: no read just to see EOF
      if (bytesRead < buffers.payload && sent === expectedSize) break;
    }
  } finally {
    await handle.close();
  }
}

/** Sends a file's contents as DATA packets and the empty DATA packet that ends it. */
async function sendFile(
  call: PacketStream,
  id: number,
  file: string,
  buffers: BufferPool,
  expectedSize: number,
): Promise<void> {
  if (expectedSize < buffers.payload) await sendSmallFile(call, id, file, buffers);
  else await sendLargeFile(call, id, file, buffers, expectedSize);
  await write(call, { type: PACKET_DATA, ID: id });
}

/** What the daemon asks for in a DiffCopy call's metadata (from the local source's attributes). */
export interface TransferRequest {
  /** the `local://NAME` */
  readonly dirName: string;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly followPaths: readonly string[];
}

/** Go's url.QueryUnescape. */
function queryUnescape(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/**
 * Reads the request metadata. The daemon sends a list as repeated header fields, which Node's HTTP/2
 * layer joins with ", " into one value: we split on that. A pattern that itself contains ", " cannot be
 * told apart (unless the daemon URL-escaped the values, which it does when any has non-ASCII text).
 */
export function transferRequest(metadata: grpc.Metadata): TransferRequest {
  const values = (key: string): string[] => {
    const encoded = metadata.get(`${key}-encoded`).some((v) => /^(1|t|true)$/i.test(String(v)));
    const out: string[] = [];
    for (const value of metadata.get(key)) {
      for (const part of String(value).split(', ')) out.push(encoded ? queryUnescape(part) : part);
    }
    return out.filter((v) => v !== '');
  };
  return {
    dirName: values('dir-name')[0] ?? '',
    include: values('include-patterns'),
    exclude: values('exclude-patterns'),
    followPaths: values('followpaths'),
  };
}

export interface FileSyncOptions {
  /** called with the relative path of every file the daemon asks for, and the directory's name */
  readonly onFileRequested?: (path: string, dirName: string) => void;
  /** called for each DiffCopy call with what the daemon asked for */
  readonly onTransfer?: (request: TransferRequest) => void;
}

/** Serves one DiffCopy call for the directory `root`. */
async function diffCopy(
  call: PacketStream,
  root: string,
  request: TransferRequest,
  options: FileSyncOptions,
): Promise<void> {
  const files = new Map<number, ContextEntry>();
  const queue: number[] = [];
  let active = 0;
  let finished = false;
  let settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
  let failure: Error | undefined;

  const buffers = new BufferPool(chunkSize, parallelFiles * 3, dataHeadroom);
  const fail = (err: Error): void => {
    failure ??= err;
    buffers.close(err);
    settle?.reject(err);
  };
  const check = (): void => {
    if (finished && queue.length === 0 && active === 0) settle?.resolve();
  };
  const pump = (): void => {
    while (!failure && active < parallelFiles && queue.length > 0) {
      const id = queue.shift() as number;
      const file = files.get(id);
      if (!file?.file) {
        fail(new Error(`invalid file id ${id}`));
        return;
      }
      files.delete(id);
      active++;
      options.onFileRequested?.(file.path, request.dirName);
      sendFile(call, id, file.file, buffers, Number(file.stat.size ?? 0)).then(
        () => {
          active--;
          pump();
          check();
        },
        // the daemon shows this to the user: name the file
        (err: unknown) =>
          fail(
            new Error(`${file.path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }),
          ),
      );
    }
  };

  call.on('data', (packet: fsutil_types_Packet) => {
    switch (packet.type ?? PACKET_STAT) {
      case PACKET_REQ:
        queue.push(packet.ID ?? 0);
        pump();
        break;
      case PACKET_FIN:
        finished = true;
        check();
        break;
      case PACKET_ERR:
        fail(new Error(`error from receiver: ${Buffer.from(packet.data ?? []).toString()}`));
        break;
    }
  });
  call.on('end', () => {
    finished = true;
    check();
  });
  call.on('error', (err: Error) => fail(err));
  call.on('cancelled', () => fail(new Error('transfer cancelled by the daemon')));

  const done = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  /**
   * A failure on our side (the walk, or a file that cannot be read: permissions, replaced since the
   * walk, whether during the walk or after it): the daemon waits for the data until told, so it is told,
   * and the build fails naming the file instead of hanging. Once only; not for the daemon's own errors.
   */
  let told = false;
  const tellDaemon = async (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    if (told || /^error from receiver|^transfer cancelled/.test(message)) return;
    told = true;
    if (call.destroyed) return;
    // a stream that will not drain (the call is going away) must not hold the failure back
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      write(call, { type: PACKET_ERR, data: Buffer.from(message) }),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 2_000);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  };
  done.catch(() => {}); // observed below; a failure during the walk must not go unhandled

  try {
    // inside the try: a pattern the filter refuses must reach the daemon too (it waited for ever)
    const filter = await contextFilter(root, request);
    let id = 0;
    for await (const entry of walkContext(root, filter)) {
      if (failure) throw failure;
      if (entry.file) files.set(id, entry);
      await write(call, { type: PACKET_STAT, stat: entry.stat });
      id++;
    }
    await write(call, { type: PACKET_STAT });
  } catch (err) {
    await tellDaemon(err);
    throw err;
  }
  if (failure) {
    await tellDaemon(failure);
    throw failure;
  }
  check();
  try {
    await done;
  } catch (err) {
    await tellDaemon(err);
    throw err;
  }
  await write(call, { type: PACKET_FIN });
  call.end();
}

/** Resolves when the daemon has ended the call, or after `ms`. */
function endedOrAfter(call: PacketStream, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (call.destroyed || call.cancelled) return resolve();
    const timer = setTimeout(resolve, ms);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    call.once('cancelled', done);
    call.once('close', done);
    call.once('error', done);
  });
}

/** A FileSync service that serves the given directories by name (the `local://NAME` of LLB). */
export function fileSyncService(
  dirs: Readonly<Record<string, string>>,
  options: FileSyncOptions = {},
): SessionService {
  return {
    name: 'moby.filesync.v1.FileSync',
    implementation: {
      DiffCopy: (call: PacketStream) => {
        const request = transferRequest(call.metadata);
        const root = Object.hasOwn(dirs, request.dirName) ? dirs[request.dirName] : undefined;
        if (!root) {
          call.destroy(
            Object.assign(new Error(`no access allowed to dir "${request.dirName}"`), { code: 5 }),
          );
          return;
        }
        options.onTransfer?.(request);
        diffCopy(call, root, request, options).catch(async (err: unknown) => {
          // the daemon ends the call once it has read our PACKET_ERR: ending it first would drop that
          // packet (the daemon then waited for the file for ever), so give it a moment
          await endedOrAfter(call, 5_000);
          call.destroy(err instanceof Error ? err : new Error(String(err)));
        });
      },
      TarStream: (call: PacketStream) => {
        call.destroy(Object.assign(new Error('TarStream is not supported; use DiffCopy'), { code: 12 }));
      },
    },
  };
}
