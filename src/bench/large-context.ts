/**
 * A large, deterministic build context for the FileSync acceptance test and benchmark: by default
 * 10,000 files totalling 1 GiB (100 directories of 99 small files, 0-16 KiB, and one large one).
 * Contents are an AES-CTR keystream of a seed, written and hashed in chunks (never held in memory);
 * the result carries a `sha256sum -c` manifest of every file.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { prng } from '../../test/support/prng.js';

export interface LargeContextOptions {
  readonly dirs?: number;
  readonly filesPerDir?: number;
  readonly totalBytes?: number;
  /** small files are 0 .. smallMax-1 bytes */
  readonly smallMax?: number;
  readonly seed?: string;
}

export interface LargeContext {
  readonly files: number;
  readonly bytes: number;
  /** relative path -> sha256 hex */
  readonly sums: Map<string, string>;
  /** the file a test changes */
  readonly changePath: string;
}

const chunk = 1024 * 1024;
const zeros = Buffer.alloc(chunk);

/** Writes `size` keystream bytes of (seed, name) to `path`; returns the sha256. */
export async function writeSeededFile(
  path: string,
  size: number,
  seed: string,
  name: string,
): Promise<string> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const iv = createHash('sha256').update(name).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, iv);
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  try {
    for (let left = size; left > 0; left -= chunk) {
      const data = cipher.update(left >= chunk ? zeros : zeros.subarray(0, left));
      hash.update(data);
      await handle.write(data);
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** Generates the context in `dir` (which must exist). */
export async function generateLargeContext(
  dir: string,
  options: LargeContextOptions = {},
): Promise<LargeContext> {
  const dirs = options.dirs ?? 100;
  const perDir = options.filesPerDir ?? 100;
  const total = options.totalBytes ?? 1024 * 1024 * 1024;
  const smallMax = options.smallMax ?? 16 * 1024;
  const seed = options.seed ?? 'cog-ts large context v1';
  const random = prng(0x5eed);

  // sizes first, so that the large files (the last of each directory) make up the rest exactly
  const small: number[][] = [];
  let smallTotal = 0;
  for (let d = 0; d < dirs; d++) {
    const sizes: number[] = [];
    for (let f = 0; f < perDir - 1; f++) {
      const size = Math.floor(random() * smallMax);
      sizes.push(size);
      smallTotal += size;
    }
    small.push(sizes);
  }
  const largeTotal = Math.max(0, total - smallTotal);
  const large = Math.floor(largeTotal / dirs);

  const sums = new Map<string, string>();
  let bytes = 0;
  for (let d = 0; d < dirs; d++) {
    const dirName = `d${String(d).padStart(3, '0')}`;
    await mkdir(join(dir, dirName), { recursive: true });
    const sizes = [...(small[d] ?? []), d === dirs - 1 ? largeTotal - large * (dirs - 1) : large];
    for (const [f, size] of sizes.entries()) {
      const path = `${dirName}/f${String(f).padStart(3, '0')}.bin`;
      sums.set(path, await writeSeededFile(join(dir, path), size, seed, path));
      bytes += size;
    }
  }
  return {
    files: sums.size,
    bytes,
    sums,
    changePath: `d${String(Math.floor(dirs / 2)).padStart(3, '0')}/f017.bin`,
  };
}

/** The manifest in `sha256sum -c` format, paths sorted. */
export function manifest(sums: ReadonlyMap<string, string>): string {
  return [...sums.keys()]
    .sort()
    .map((path) => `${sums.get(path) ?? ''}  ${path}\n`)
    .join('');
}
