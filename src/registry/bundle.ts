/**
 * A model bundle: an OCI image index whose first manifest is the model's image (weights, when cog-ts
 * pushes them, follow as siblings). Also the push id label an image gets when it is pushed as a bundle.
 * Pure.
 */
import type { ManifestDescriptor } from './manifests.js';
import { mediaTypes, sha256Digest } from './manifests.js';

/** The label `cog push` puts in a bundle's image: a fresh UUIDv7 per push. */
export const pushIdLabel = 'run.cog.push_id';

export interface BundlePlatform {
  readonly os: string;
  readonly architecture: string;
}

export interface BundleIndex {
  readonly bytes: Buffer;
  readonly digest: string;
  readonly mediaType: typeof mediaTypes.ociIndex;
}

/**
 * The index for an image with no managed weights: schemaVersion 2, the OCI index media type, and the
 * image's descriptor (as the registry reported it) with its platform. Keys in the order Go writes them;
 * the digest is over exactly these bytes.
 */
export function buildBundleIndex(image: ManifestDescriptor, platform: BundlePlatform): BundleIndex {
  const index = {
    schemaVersion: 2,
    mediaType: mediaTypes.ociIndex,
    manifests: [
      {
        mediaType: image.mediaType,
        size: image.size,
        digest: image.digest,
        platform: { architecture: platform.architecture, os: platform.os },
      },
    ],
  };
  const bytes = Buffer.from(JSON.stringify(index), 'utf8');
  return { bytes, digest: sha256Digest(bytes), mediaType: mediaTypes.ociIndex };
}

/**
 * A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, the version, 74 random bits and the
 * variant. `random` supplies at least 10 bytes.
 */
export function uuidV7(unixMs: number, random: Uint8Array): string {
  if (random.length < 10) throw new RangeError('uuidV7 needs 10 random bytes');
  const bytes = new Uint8Array(16);
  let ms = Math.floor(unixMs);
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes.set(random.subarray(0, 10), 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The lines `cog push` prints for a pushed bundle (stderr): the index, then its image. */
export function bundleTree(repository: string, indexDigest: string, imageDigest: string): string[] {
  return [`model ${repository}@${indexDigest}`, `└── image ${repository}@${imageDigest}`];
}
