/** OCI layouts and large blob files made on the spot for registry tests; nothing is held in memory. */
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { create as createTar } from 'tar';

export interface Blob {
  readonly digest: string;
  readonly size: number;
  readonly path: string;
}

/** Deterministic pseudo-random bytes: AES-256-CTR over zeros, keyed by `seed`. */
export function pseudoRandomStream(size: number, seed: string): Readable {
  const key = createHash('sha256').update(`key:${seed}`).digest();
  const iv = createHash('sha256').update(`iv:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  const zeros = Buffer.alloc(1 << 20);
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, zeros.length);
      left -= n;
      this.push(cipher.update(zeros.subarray(0, n)));
    },
  });
}

/** Writes `size` pseudo-random bytes to `path`, hashing on the way. */
export async function writePseudoRandomFile(path: string, size: number, seed: string): Promise<Blob> {
  const hash = createHash('sha256');
  const source = pseudoRandomStream(size, seed);
  source.on('data', (chunk: Buffer) => hash.update(chunk));
  await pipeline(source, createWriteStream(path));
  return { digest: `sha256:${hash.digest('hex')}`, size, path };
}

/** Stores `bytes` as a blob of the layout in `dir`. */
async function putBlob(dir: string, bytes: Buffer): Promise<Blob> {
  const hex = createHash('sha256').update(bytes).digest('hex');
  const path = join(dir, 'blobs', 'sha256', hex);
  await writeFile(path, bytes);
  return { digest: `sha256:${hex}`, size: bytes.length, path };
}

/** A layer: an uncompressed tar holding one file of `size` random bytes. */
async function randomLayer(dir: string, work: string, size: number, seed: string): Promise<Blob> {
  await mkdir(work, { recursive: true });
  await writePseudoRandomFile(join(work, `data-${seed}.bin`), size, seed);
  const tarPath = join(dir, `layer-${seed}.tar`);
  await createTar({ cwd: work, file: tarPath, portable: true, mtime: new Date(0) }, [`data-${seed}.bin`]);
  const hash = createHash('sha256');
  const bytes = await readFile(tarPath);
  hash.update(bytes);
  const hex = hash.digest('hex');
  const path = join(dir, 'blobs', 'sha256', hex);
  await rename(tarPath, path);
  return { digest: `sha256:${hex}`, size: bytes.length, path };
}

const layerType = 'application/vnd.oci.image.layer.v1.tar';
const manifestType = 'application/vnd.oci.image.manifest.v1+json';
const indexType = 'application/vnd.oci.image.index.v1+json';

export interface LayoutImage {
  readonly dir: string;
  /** the top descriptor (manifest or index) */
  readonly digest: string;
  readonly mediaType: string;
  readonly layers: readonly Blob[];
}

async function imageManifest(dir: string, layers: readonly Blob[], arch: string, label: string) {
  const config = await putBlob(
    dir,
    Buffer.from(
      JSON.stringify({
        architecture: arch,
        os: 'linux',
        config: { Labels: { 'org.cogts.test': label } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      }),
    ),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: manifestType,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: config.digest,
      size: config.size,
    },
    layers: layers.map((l) => ({ mediaType: layerType, digest: l.digest, size: l.size })),
  };
  return putBlob(dir, Buffer.from(JSON.stringify(manifest)));
}

/**
 * Writes an OCI layout: one image with layers of the given sizes, or with `platforms` an index of one
 * image per platform sharing the layers (plus one layer of its own each).
 */
export async function writeLayout(
  dir: string,
  options: {
    readonly layerSizes: readonly number[];
    readonly seed: string;
    readonly platforms?: readonly string[];
  },
): Promise<LayoutImage> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const work = join(dir, '..', `${options.seed}-work`);
  const layers: Blob[] = [];
  for (const [i, size] of options.layerSizes.entries())
    layers.push(await randomLayer(dir, work, size, `${options.seed}-${i}`));
  let top: { digest: string; size: number; mediaType: string };
  if (!options.platforms) {
    const m = await imageManifest(dir, layers, 'amd64', options.seed);
    top = { digest: m.digest, size: m.size, mediaType: manifestType };
  } else {
    const children = [];
    for (const arch of options.platforms) {
      const own = await randomLayer(dir, work, 1024, `${options.seed}-${arch}`);
      layers.push(own);
      const m = await imageManifest(dir, [...layers.slice(0, options.layerSizes.length), own], arch, arch);
      children.push({
        mediaType: manifestType,
        digest: m.digest,
        size: m.size,
        platform: { os: 'linux', architecture: arch },
      });
    }
    const index = await putBlob(
      dir,
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: indexType, manifests: children })),
    );
    top = { digest: index.digest, size: index.size, mediaType: indexType };
  }
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': options.seed } }],
    }),
  );
  return { dir, digest: top.digest, mediaType: top.mediaType, layers };
}
