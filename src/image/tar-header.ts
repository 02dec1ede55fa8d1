/**
 * Tar headers for the layers cog-ts writes itself (image/source-layer.ts): POSIX ustar, with a PAX
 * extended header before an entry whose path or link target does not fit ustar's fields, or whose size
 * does not fit its 11 octal digits (8 GiB). Owner root, no user or group names, times in whole seconds:
 * what a layer needs, nothing more. Pure; written here rather than taken from `tar` (node-tar), whose
 * package costs ~6 ms of every start of the source-only answer's bundle for two classes.
 */

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'directory';

export interface TarEntry {
  /** the path in the archive, e.g. `src/predict.py`; a directory's ends with `/` */
  readonly path: string;
  readonly type: TarEntryType;
  /** permission bits (and setuid/setgid/sticky) */
  readonly mode: number;
  /** bytes of content that follow (files only) */
  readonly size: number;
  readonly mtime: Date;
  /** a link's target */
  readonly linkpath?: string;
}

const block = 512;
const typeFlags: Record<TarEntryType, string> = { file: '0', hardlink: '1', symlink: '2', directory: '5' };
/** The largest size 11 octal digits hold. */
const maxOctalSize = 0o77777777777;

/** `value` as octal digits filling `width - 1` bytes, then NUL. */
function octal(value: number, width: number): string {
  return `${Math.floor(value)
    .toString(8)
    .padStart(width - 1, '0')}\0`;
}

/** The longest prefix of `text` that is at most `bytes` UTF-8 bytes (never half a character). */
function truncateUtf8(text: string, bytes: number): string {
  let out = '';
  for (const char of text) {
    if (Buffer.byteLength(out + char) > bytes) break;
    out += char;
  }
  return out;
}

/** ustar's split of a long path into prefix (up to 155 bytes) and name (up to 100), at a `/`. */
function splitPath(path: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '')
      return { prefix, name };
  }
  return undefined;
}

/** One ustar header block; `path` and `linkpath` must fit (see tarHeader). */
function ustarBlock(
  type: string,
  path: { prefix: string; name: string },
  fields: { mode: number; size: number; mtime: number; linkpath: string },
): Buffer {
  const header = Buffer.alloc(block);
  const put = (offset: number, length: number, text: string) => header.write(text, offset, length, 'utf8');
  put(0, 100, path.name);
  put(100, 8, octal(fields.mode & 0o7777, 8));
  put(108, 8, octal(0, 8));
  put(116, 8, octal(0, 8));
  put(124, 12, octal(fields.size, 12));
  put(136, 12, octal(fields.mtime, 12));
  put(148, 8, '        ');
  put(156, 1, type);
  put(157, 100, fields.linkpath);
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  put(329, 8, octal(0, 8));
  put(337, 8, octal(0, 8));
  put(345, 155, path.prefix);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return header;
}

/** A PAX record: `<length> <key>=<value>\n`, the length counting itself. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restBytes = Buffer.byteLength(rest);
  let length = restBytes + String(restBytes).length;
  if (String(length).length !== String(restBytes).length) length = restBytes + String(length).length;
  return `${length}${rest}`;
}

/** Zero bytes padding `size` bytes of content to the next block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((block - (size % block)) % block);
}

/** The two zero blocks that end an archive. */
export const tarEnd = (): Buffer => Buffer.alloc(block * 2);

/** An entry's header blocks: a PAX extended header first when ustar's fields cannot hold it. */
export function tarHeader(entry: TarEntry): Buffer {
  const records: string[] = [];
  let path = splitPath(entry.path);
  if (!path) {
    records.push(paxRecord('path', entry.path));
    path = { prefix: '', name: truncateUtf8(entry.path, 100) };
  }
  let linkpath = entry.linkpath ?? '';
  if (Buffer.byteLength(linkpath) > 100) {
    records.push(paxRecord('linkpath', linkpath));
    // the ustar field keeps what fits (readers that check it before applying PAX want one there)
    linkpath = truncateUtf8(linkpath, 100);
  }
  let size = entry.size;
  if (size > maxOctalSize) {
    records.push(paxRecord('size', String(size)));
    size = 0;
  }
  const mtime = Math.floor(entry.mtime.getTime() / 1000);
  const fields = { mode: entry.mode, size, mtime, linkpath };
  const header = ustarBlock(typeFlags[entry.type], path, fields);
  if (records.length === 0) return header;
  const body = Buffer.from(records.join(''), 'utf8');
  const paxName = { prefix: '', name: truncateUtf8(`PaxHeaders/${path.name}`, 100) };
  const pax = ustarBlock('x', paxName, { mode: 0o644, size: body.length, mtime, linkpath: '' });
  return Buffer.concat([pax, body, tarPadding(body.length), header]);
}
