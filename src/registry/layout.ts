/** Read access to an OCI image layout directory (the local image store is one). */
import { stat } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CogError } from '../errors.js';
import { DamagedBlobError, wrongSizeError } from '../image/damaged-blob.js';
import { type Descriptor, type OciIndex, refNameAnnotation } from '../image/store.js';
import { type BlobSource, fileBlobSource } from './blobs.js';

export type { Descriptor, OciIndex };

// the push and inspect commands take it from the registry's exports
export { DamagedBlobError };

export class OciLayout {
  constructor(readonly root: string) {}

  blobPath(digest: string): string {
    const match = /^(sha256|sha512):([0-9a-f]+)$/.exec(digest);
    if (!match?.[1] || !match[2])
      throw new CogError(`not a digest: ${digest}`, { hint: `the image layout ${this.root} is corrupt` });
    return join(this.root, 'blobs', match[1], match[2]);
  }

  async index(): Promise<OciIndex> {
    const file = join(this.root, 'index.json');
    try {
      return JSON.parse(await readFile(file, 'utf8')) as OciIndex;
    } catch (err) {
      throw new CogError(`cannot read the image layout index ${file}`, {
        hint: 'build the image first, or point at a directory holding an OCI image layout',
        cause: err,
      });
    }
  }

  /** The descriptor named `name` (ref.name annotation), or the only one when no name is given. */
  async resolve(name?: string): Promise<Descriptor> {
    const manifests = (await this.index()).manifests;
    const found =
      name === undefined
        ? manifests.length === 1
          ? manifests[0]
          : undefined
        : manifests.find((m) => m.annotations?.[refNameAnnotation] === name);
    if (!found)
      throw new CogError(
        name === undefined
          ? `the image layout ${this.root} holds ${manifests.length} images; name one`
          : `no image named ${name} in ${this.root}`,
        { hint: name === undefined ? 'pass the image name' : `build it first: cog build -t ${name}` },
      );
    return found;
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      throw missing(this.root, digest, err);
    }
  }

  /** A BlobSource for a descriptor, after checking the file is there with the stated size. */
  async blobSource(descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<BlobSource> {
    const path = this.blobPath(descriptor.digest);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      throw missing(this.root, descriptor.digest, err);
    }
    if (size !== descriptor.size) throw wrongSizeError(descriptor.digest, this.root, size, descriptor.size);
    return fileBlobSource(path, descriptor.digest, size);
  }
}

function missing(root: string, digest: string, cause: unknown): CogError {
  return new CogError(`blob ${digest} is missing from ${root}`, {
    hint: 'the image layout is incomplete; rebuild the image',
    cause,
  });
}
