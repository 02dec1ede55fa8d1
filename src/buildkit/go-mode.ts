/**
 * Go's os.FileMode, which fsutil puts on the wire instead of POSIX st_mode: the type bits and the
 * conversions both ways.
 */

/** Go's os.FileMode bits, as fsutil puts them on the wire. */
export const goMode = {
  dir: 0x80000000,
  symlink: 0x08000000,
  device: 0x04000000,
  namedPipe: 0x02000000,
  socket: 0x01000000,
  setuid: 0x00800000,
  setgid: 0x00400000,
  charDevice: 0x00200000,
  sticky: 0x00100000,
  irregular: 0x00080000,
};

export type EntryType =
  'file' | 'dir' | 'symlink' | 'blockDevice' | 'charDevice' | 'namedPipe' | 'socket' | 'irregular';

/** Splits a Go os.FileMode into the entry type and the POSIX permission bits (0o7777) for chmod. */
export function fromGoMode(mode: number): { type: EntryType; perm: number } {
  let perm = mode & 0o777;
  if (mode & goMode.setuid) perm |= 0o4000;
  if (mode & goMode.setgid) perm |= 0o2000;
  if (mode & goMode.sticky) perm |= 0o1000;
  let type: EntryType = 'file';
  if (mode & goMode.dir) type = 'dir';
  else if (mode & goMode.symlink) type = 'symlink';
  else if (mode & goMode.device) type = mode & goMode.charDevice ? 'charDevice' : 'blockDevice';
  else if (mode & goMode.namedPipe) type = 'namedPipe';
  else if (mode & goMode.socket) type = 'socket';
  else if (mode & goMode.irregular) type = 'irregular';
  return { type, perm };
}

/** A POSIX st_mode (from lstat) as a Go os.FileMode. */
export function toGoMode(st: { mode: bigint }): number {
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
    case 0o140000:
      // as Go's os.FileMode: the daemon then asks for no data (it took a socket for a regular file)
      out |= goMode.socket;
      break;
  }
  return out >>> 0;
}
