/**
 * The session's FileSync service: sends a local directory to buildkitd with fsutil's DiffCopy protocol.
 *
 * We stat every entry (depth-first, each directory's entries sorted byte-wise, a directory before its
 * children) and send one STAT packet each, then an empty STAT. The daemon compares them with what it
 * has and asks for the files it lacks by index (REQ); we stream those as DATA packets, an empty DATA
 * ending each file. FIN from the daemon is answered with FIN. File contents are streamed from disk in
 * chunks; only the list of paths is kept in memory.
 */
import { createReadStream } from 'node:fs';
import { lstat, opendir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { fsutil_types_Packet, fsutil_types_Stat } from '../gen/types.js';
import type { SessionService } from './session.js';

const PACKET_STAT = 0;
const PACKET_REQ = 1;
const PACKET_DATA = 2;
const PACKET_FIN = 3;
const PACKET_ERR = 4;

/** Go's os.FileMode type bits, which fsutil puts on the wire instead of POSIX st_mode. */
const goMode = {
  dir: 0x80000000,
  symlink: 0x08000000,
  device: 0x04000000,
  namedPipe: 0x02000000,
  setuid: 0x00800000,
  setgid: 0x00400000,
  charDevice: 0x00200000,
  sticky: 0x00100000,
};

const chunkSize = 32 * 1024;

interface Entry {
  readonly path: string;
  readonly stat: fsutil_types_Stat;
  /** absolute path, for regular files only */
  readonly file?: string;
}

function toGoMode(st: { mode: bigint }): number {
  const mode = Number(st.mode);
  let out = mode & 0o777;
  if (mode & 0o4000) out |= goMode.setuid;
  if (mode & 0o2000) out |= goMode.setgid;
  if (mode & 0o1000) out |= goMode.sticky;
  switch (mode & 0o170000) {
    case 0o040000:
      out |= goMode.dir;
      break;
    case 0o120000:
      out |= goMode.symlink;
      break;
    case 0o020000:
      out |= goMode.device | goMode.charDevice;
      break;
    case 0o060000:
      out |= goMode.device;
      break;
    case 0o010000:
      out |= goMode.namedPipe;
      break;
  }
  return out >>> 0;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Entries under `root` in fsutil's order: depth-first, names sorted byte-wise within each directory. */
async function* walk(root: string, rel = ''): AsyncGenerator<Entry> {
  const dir = await opendir(join(root, rel));
  const names: string[] = [];
  for await (const dirent of dir) names.push(dirent.name);
  names.sort(byteOrder);
  for (const name of names) {
    const path = rel ? `${rel}/${name}` : name;
    const abs = join(root, path);
    const st = await lstat(abs, { bigint: true });
    const mode = toGoMode(st);
    // mtimes in full nanoseconds (past 2^53, so as a string): the daemon's differ compares them
    const stat: fsutil_types_Stat = { path, mode, modTime: st.mtimeNs.toString() };
    let file: string | undefined;
    if (st.isSymbolicLink()) stat.linkname = await readlink(abs);
    else if (st.isFile()) {
      stat.size = Number(st.size);
      file = abs;
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      stat.devmajor = Number(st.rdev >> 8n) & 0xfff;
      stat.devminor = Number(st.rdev & 0xffn);
    }
    yield file ? { path, stat, file } : { path, stat };
    if (st.isDirectory()) yield* walk(root, path);
  }
}

type PacketStream = grpc.ServerDuplexStream<fsutil_types_Packet, fsutil_types_Packet>;

function write(call: PacketStream, packet: fsutil_types_Packet): Promise<void> {
  return new Promise((resolve) => {
    if (call.write(packet)) resolve();
    else call.once('drain', resolve);
  });
}

async function sendFile(call: PacketStream, id: number, file: string): Promise<void> {
  for await (const chunk of createReadStream(file, { highWaterMark: chunkSize })) {
    await write(call, { type: PACKET_DATA, ID: id, data: chunk as Buffer });
  }
  await write(call, { type: PACKET_DATA, ID: id });
}

export interface FileSyncOptions {
  /** called with the relative path of every file the daemon asks for */
  readonly onFileRequested?: (path: string) => void;
}

/** Serves one DiffCopy call for the directory `root`. */
async function diffCopy(call: PacketStream, root: string, options: FileSyncOptions): Promise<void> {
  const files = new Map<number, Entry>();
  const requests: number[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  let failed: Error | undefined;
  call.on('data', (packet: fsutil_types_Packet) => {
    if ((packet.type ?? 0) === PACKET_REQ) requests.push(packet.ID ?? 0);
    else if (packet.type === PACKET_FIN) finished = true;
    else if (packet.type === PACKET_ERR) failed = new Error(Buffer.from(packet.data ?? []).toString());
    wake?.();
  });
  call.on('end', () => {
    finished = true;
    wake?.();
  });
  call.on('error', (err) => {
    failed = err;
    wake?.();
  });

  let id = 0;
  for await (const entry of walk(root)) {
    if (entry.file) files.set(id, entry);
    await write(call, { type: PACKET_STAT, stat: entry.stat });
    id++;
  }
  await write(call, { type: PACKET_STAT });

  for (;;) {
    const next = requests.shift();
    if (next !== undefined) {
      const file = files.get(next);
      if (!file?.file) {
        await write(call, { type: PACKET_ERR, data: Buffer.from(`no file with id ${next}`) });
        call.end();
        return;
      }
      options.onFileRequested?.(file.path);
      await sendFile(call, next, file.file);
      continue;
    }
    if (failed) throw failed;
    if (finished) {
      await write(call, { type: PACKET_FIN });
      call.end();
      return;
    }
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
    wake = undefined;
  }
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
        const name = String(call.metadata.get('dir-name')[0] ?? '');
        const root = dirs[name];
        if (!root) {
          call.destroy(Object.assign(new Error(`no access allowed to dir "${name}"`), { code: 5 }));
          return;
        }
        diffCopy(call, root, options).catch((err: unknown) => {
          call.destroy(err instanceof Error ? err : new Error(String(err)));
        });
      },
      TarStream: (call: PacketStream) => {
        call.destroy(Object.assign(new Error('TarStream is not supported; use DiffCopy'), { code: 12 }));
      },
    },
  };
}
