/**
 * The local image store: an OCI image layout directory (oci-layout, index.json, blobs/sha256/…)
 * where `cog build` keeps images when it neither pushes nor writes a tarball. Images arrive as the
 * OCI exporter's tar stream and are unpacked as they stream: blobs are hashed on the way to disk,
 * verified, and renamed into place; only index.json is held in memory.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { CogError } from '../errors.js';

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
  const data = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(data, 'cog-ts', 'images');
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
   * A Writable that takes an OCI image tarball (as BuildKit's oci exporter streams it) and stores its
   * image under `name`. It finishes only once every blob is verified and the index is updated.
   */
  importer(name: string): Writable {
    const pending: Promise<void>[] = [];
    let tarIndex: OciIndex | undefined;
    let failure: Error | undefined;
    const parser = new Parser({ strict: true });
    const ready = this.ensureLayout();

    parser.on('entry', (entry: ReadEntry) => {
      const path = entry.path.replace(/^\.\//, '');
      if (path === 'index.json') {
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => chunks.push(c));
        pending.push(
          new Promise<void>((resolve) =>
            entry.on('end', () => {
              tarIndex = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OciIndex;
              resolve();
            }),
          ),
        );
        return;
      }
      const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(path);
      if (!blob?.[1] || entry.type !== 'File') {
        entry.resume();
        return;
      }
      pending.push(
        this.storeBlob(`sha256:${blob[1]}`, entry, ready).catch((err: Error) => {
          failure ??= err;
        }),
      );
    });
    parser.on('error', (err: Error) => {
      failure ??= err;
    });

    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (parser.write(chunk)) callback();
        else parser.once('drain', () => callback());
      },
      final: (callback) => {
        // the parser may emit 'end' synchronously inside end(): listen first
        const finished = new Promise<void>((resolve) => parser.once('end', () => resolve()));
        parser.end();
        finished
          .then(() => Promise.all(pending))
          .then(async () => {
            if (failure) throw failure;
            const manifest = tarIndex?.manifests[0];
            if (!manifest) throw new CogError('the exported image tarball has no index.json manifest');
            if (!this.hasBlob(manifest.digest))
              throw new CogError(`the exported image tarball lacks its manifest ${manifest.digest}`);
            const plain: Descriptor = { ...manifest };
            delete plain.annotations; // the exporter's own name annotations give way to `name`
            await this.updateIndex((index) => withTaggedManifest(index, name, plain));
          })
          .then(
            () => callback(),
            (err: Error) => callback(err),
          );
      },
    });
  }

  private async storeBlob(digest: string, entry: ReadEntry, ready: Promise<void>): Promise<void> {
    await ready;
    const target = blobPath(this.root, digest);
    if (existsSync(target)) {
      entry.resume(); // content-addressed: already here
      await new Promise<void>((resolve) => entry.on('end', () => resolve()));
      return;
    }
    const temp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const hash = createHash('sha256');
    // one consumer for the entry: a second listener attached later would miss what the first saw
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(entry, hashing, createWriteStream(temp));
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== digest) throw new CogError(`blob ${digest} arrived with content ${actual}`);
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }
}
