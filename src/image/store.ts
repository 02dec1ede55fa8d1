/**
 * The local image store: an OCI image layout directory (oci-layout, index.json, blobs/sha256/…)
 * where `cog build` keeps images when it neither pushes nor writes a tarball. Images arrive blob by
 * blob: the daemon's oci exporter (tar=false) writes into this directory served as the session's
 * content store "export" (see buildkit/content-store.ts), which hashes and verifies each blob before
 * renaming it into place and skips blobs already here; `tag` then files the manifest under its name.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CogError } from '../errors.js';
import { userDir } from '../user-dirs.js';

export const refNameAnnotation = 'org.opencontainers.image.ref.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

/** Where the store lives: $COG_IMAGE_STORE, else $XDG_DATA_HOME/cog-ts/images, else ~/.local/share/…. */
export function imageStoreDir(env: NodeJS.ProcessEnv): string {
  if (env.COG_IMAGE_STORE) return env.COG_IMAGE_STORE;
  return join(userDir(env, 'data'), 'cog-ts', 'images');
}

function blobPath(root: string, digest: string): string {
  const match = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!match?.[1]) throw new CogError(`not a sha256 digest: ${digest}`);
  return join(root, 'blobs', 'sha256', match[1]);
}

/** Adds `manifest` under `name`, replacing what had that name. Pure. */
export function withTaggedManifest(index: OciIndex, name: string, manifest: Descriptor): OciIndex {
  const kept = index.manifests.filter((m) => m.annotations?.[refNameAnnotation] !== name);
  const annotations: Record<string, string> = { ...(manifest.annotations ?? {}), [refNameAnnotation]: name };
  return { ...index, manifests: [...kept, { ...manifest, annotations }] };
}

export class ImageStore {
  constructor(readonly root: string) {}

  private async ensureLayout(): Promise<void> {
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
    if (!existsSync(join(this.root, 'oci-layout')))
      await writeFile(join(this.root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
  }

  async index(): Promise<OciIndex> {
    try {
      return JSON.parse(await readFile(join(this.root, 'index.json'), 'utf8')) as OciIndex;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, manifests: [] };
      throw new CogError(`the image store index ${join(this.root, 'index.json')} is unreadable`, {
        hint: 'remove the file to start an empty store',
        cause: err,
      });
    }
  }

  /** The manifest descriptor stored under `name`, if any. */
  async resolve(name: string): Promise<Descriptor | undefined> {
    return (await this.index()).manifests.find((m) => m.annotations?.[refNameAnnotation] === name);
  }

  hasBlob(digest: string): boolean {
    return existsSync(blobPath(this.root, digest));
  }

  async readBlob(digest: string): Promise<Buffer> {
    return readFile(blobPath(this.root, digest));
  }

  /** Updates index.json under an exclusive lock file, written atomically. */
  private async updateIndex(change: (index: OciIndex) => OciIndex): Promise<void> {
    const lock = join(this.root, 'index.json.lock');
    for (let attempt = 0; ; attempt++) {
      try {
        await (await open(lock, 'wx')).close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 100) {
          throw new CogError(`cannot lock the image store (${lock})`, {
            hint: 'if no other cog is running, remove the lock file',
            cause: err,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    try {
      const next = change(await this.index());
      const temp = join(this.root, `index.json.${process.pid}.tmp`);
      await writeFile(temp, `${JSON.stringify(next, null, 2)}\n`);
      await rename(temp, join(this.root, 'index.json'));
    } finally {
      await rm(lock, { force: true });
    }
  }

  /**
   * Files the image whose manifest the daemon wrote into this store (an oci export with tar=false,
   * through the session's content store) under `name`, once its manifest blob is here.
   */
  async tag(name: string, manifest: Descriptor): Promise<void> {
    await this.ensureLayout();
    if (!this.hasBlob(manifest.digest))
      throw new CogError(`the image store lacks the exported manifest ${manifest.digest}`, {
        hint: 'build again; if it persists, remove the store directory',
      });
    const plain: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
    if (manifest.platform) plain.platform = manifest.platform;
    await this.updateIndex((index) => withTaggedManifest(index, name, plain));
    // the content store's staging directory, when no other write is in progress
    await rmdir(join(this.root, 'ingest')).catch(() => {});
  }
}
