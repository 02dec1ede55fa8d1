/**
 * The local image store: an OCI image layout directory (oci-layout, index.json, blobs/sha256/…)
 * where `cog build` keeps images when it neither pushes nor writes a tarball. Images arrive blob by
 * blob: the daemon's oci exporter (tar=false) writes into this directory served as the session's
 * content store "export" (see buildkit/content-store.ts), which hashes and verifies each blob before
 * renaming it into place and skips blobs already here; `tag` then files the manifest under its name.
 */
import { isRecord } from '../is-record.js';
import { randomBytes } from 'node:crypto';
import { type Stats, existsSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CogError } from '../errors.js';
import { releaseLockFile, takeLockFile } from '../lock-file.js';
import { processStartTicks } from '../process-start.js';
import { DamagedBlobError, wrongSizeError } from './damaged-blob.js';
import { sha256Digest } from '../registry/manifests.js';
import { userDir, userDirSetting } from '../user-dirs.js';
import {
  type LeaseHolder,
  UnreadableManifestError,
  digestsNamedIn,
  leaseIsLive,
  processIsAlive,
  reachableDigests,
} from './store-gc.js';

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

/** What is in the way of a directory at `root`: a file on its path, or a symbolic link to nothing. */
type StorePathProblem =
  | { readonly kind: 'file' }
  | { readonly kind: 'dangling-link'; readonly path: string; readonly target: string };

/** Looks from `root` up to the first path that is there: a directory (no problem) or what is in the way. */
function storePathProblem(root: string): StorePathProblem | undefined {
  for (let path = root; dirname(path) !== path; path = dirname(path)) {
    let entry: Stats | undefined;
    try {
      entry = lstatSync(path, { throwIfNoEntry: false });
    } catch (err) {
      // under a file (ENOTDIR): that file is met further up; anything else is for mkdir to report
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      return undefined;
    }
    if (!entry) continue;
    if (entry.isSymbolicLink()) {
      // a link to nothing, to a path under a file (ENOTDIR) or to itself (ELOOP): no directory there
      const followed = (() => {
        try {
          return statSync(path, { throwIfNoEntry: false });
        } catch {
          return undefined;
        }
      })();
      if (!followed)
        return { kind: 'dangling-link', path, target: resolve(dirname(path), readlinkSync(path)) };
      entry = followed;
    }
    return entry.isDirectory() ? undefined : { kind: 'file' };
  }
  return undefined;
}

/**
 * Where the store lives: $COG_IMAGE_STORE, else $XDG_DATA_HOME/cog-ts/images, else ~/.local/share/….
 * A path that is there but no directory (or under a file, or through a link to nothing) is refused,
 * naming the variable it came from.
 * @throws CogError
 */
export function imageStoreDir(env: NodeJS.ProcessEnv): string {
  const root = env.COG_IMAGE_STORE || join(userDir(env, 'data'), 'cog-ts', 'images');
  let problem: StorePathProblem | undefined;
  try {
    problem = storePathProblem(root);
  } catch (err) {
    // a link that changed while it was read: left for mkdir to report
    if (!(err as NodeJS.ErrnoException).code) throw err;
  }
  if (!problem) return root;
  const setting = env.COG_IMAGE_STORE ? undefined : userDirSetting(env, 'data');
  const store = env.COG_IMAGE_STORE ? `COG_IMAGE_STORE=${root}` : setting ? `${root} (in ${setting})` : root;
  const instead = env.COG_IMAGE_STORE
    ? 'point COG_IMAGE_STORE at a directory (it is made when missing), or unset it'
    : setting
      ? 'point XDG_DATA_HOME at a directory (the store is made in it when missing), or set COG_IMAGE_STORE to a directory for the store'
      : undefined;
  if (problem.kind === 'file')
    throw new CogError(`the local image store ${store} is not a directory`, {
      hint: instead ?? 'move the file away, or set COG_IMAGE_STORE to a directory for the store',
    });
  throw new CogError(
    `the local image store ${store} cannot be made: ${problem.path} is a symbolic link to ${problem.target}, which does not exist`,
    {
      hint: `make the link's target a directory (\`mkdir -p ${problem.target}\`), or ${instead ?? 'remove the link, or set COG_IMAGE_STORE to a directory for the store'}`,
    },
  );
}

/**
 * `mkdir -p dir` in the store at `root`, failing with what is in the way rather than a bare errno.
 * @throws CogError
 */
async function makeStoreDir(root: string, dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new CogError(`cannot make ${dir} for the local image store ${root} (${code})`, {
      hint: 'make that path a directory you can write (a file or a link to nothing may be in the way), or set COG_IMAGE_STORE to one',
      cause: err,
    });
  }
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

/** What keeps parsed JSON from being an index the store can read (descriptors in `manifests`), if anything. Pure. */
export function ociIndexProblem(json: unknown): string | undefined {
  if (!isRecord(json))
    return `it is ${Array.isArray(json) ? 'a list' : json === null ? 'null' : `a ${typeof json}`}, not an object`;
  if (!Array.isArray(json.manifests)) return 'it has no "manifests" list';
  for (const [i, entry] of json.manifests.entries()) {
    const descriptor =
      isRecord(entry) &&
      typeof entry.digest === 'string' &&
      typeof entry.mediaType === 'string' &&
      typeof entry.size === 'number' &&
      (entry.annotations === undefined || isRecord(entry.annotations));
    if (!descriptor)
      return `manifests[${i}] is not a descriptor (an object with a mediaType, digest, size and, if any, annotations)`;
  }
  return undefined;
}

const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';
/** How long a store change waits for another cog's (a garbage collection walks the store under the lock). */
const storeLockWaitMs = 30_000;

/**
 * A manifest's or index's media type read from its JSON: its own `mediaType`, else an index when it
 * lists `manifests`, a manifest when it lists `layers`; undefined for any other JSON.
 */
function manifestMediaTypeOf(json: unknown): string | undefined {
  if (!isRecord(json)) return undefined;
  if (typeof json.mediaType === 'string') return json.mediaType;
  if (Array.isArray(json.manifests)) return 'application/vnd.oci.image.index.v1+json';
  if (Array.isArray(json.layers)) return ociManifestType;
  return undefined;
}

export class ImageStore {
  constructor(readonly root: string) {}

  private async ensureLayout(): Promise<void> {
    await makeStoreDir(this.root, join(this.root, 'blobs', 'sha256'));
    if (!existsSync(join(this.root, 'oci-layout')))
      await writeFile(join(this.root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
  }

  async index(): Promise<OciIndex> {
    const file = join(this.root, 'index.json');
    const damaged = (why: string, cause?: unknown) =>
      new CogError(`the image store index ${file} ${why}`, {
        hint: 'move the file away to start an empty store (the images it named are then built again)',
        ...(cause === undefined ? {} : { cause }),
      });
    let json: unknown;
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, manifests: [] };
      const why =
        err instanceof SyntaxError
          ? `is not JSON (${err.message})`
          : `cannot be read (${(err as Error).message})`;
      throw damaged(why, err);
    }
    const problem = ociIndexProblem(json);
    if (problem) throw damaged(`is not an OCI image index (${problem})`);
    return json as OciIndex;
  }

  /** The manifest descriptor stored under `name`, if any. */
  async resolve(name: string): Promise<Descriptor | undefined> {
    return (await this.index()).manifests.find((m) => m.annotations?.[refNameAnnotation] === name);
  }

  /** Whether the store has blob `digest` (of `size` bytes, when given: a copy cut short is not the blob). */
  hasBlob(digest: string, size?: number): boolean {
    const path = blobPath(this.root, digest);
    if (size === undefined) return existsSync(path);
    return statSync(path, { throwIfNoEntry: false })?.size === size;
  }

  async readBlob(digest: string): Promise<Buffer> {
    return readFile(blobPath(this.root, digest));
  }

  /** A new path for a blob being written, on the store's filesystem (see `commitBlob`). */
  async stagingPath(): Promise<string> {
    await this.ensureLayout();
    const dir = join(this.root, 'ingest');
    await makeStoreDir(this.root, dir);
    return join(dir, `cog-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  }

  /** Moves the finished blob at `staged` (from `stagingPath`, whose digest the writer computed) in place. */
  async commitBlob(staged: string, digest: string): Promise<void> {
    await rename(staged, blobPath(this.root, digest));
  }

  /** Writes a small blob (a manifest or config) held in memory; resolves with its digest. */
  async putBlob(bytes: Buffer): Promise<string> {
    const digest = sha256Digest(bytes);
    if (this.hasBlob(digest)) return digest;
    const staged = await this.stagingPath();
    await writeFile(staged, bytes, { flag: 'wx' });
    await this.commitBlob(staged, digest);
    return digest;
  }

  /**
   * Runs `work` holding the store's exclusive lock file (index changes, leases, collection). A live
   * holder is waited for; the lock of a cog that died holding it (kill -9, the OOM killer) is cleared.
   */
  private async locked<T>(work: () => Promise<T>): Promise<T> {
    await makeStoreDir(this.root, this.root);
    const lock = join(this.root, 'index.json.lock');
    const taken = await takeLockFile(lock, {
      waitMs: storeLockWaitMs,
      busy: () =>
        new CogError(
          `cannot lock the image store (${lock}): another cog has held it for ${storeLockWaitMs / 1000} s`,
          {
            hint: 'wait for the other cog to finish; if none is running, remove the lock file',
          },
        ),
    });
    if (!taken.held)
      throw new CogError(`cannot lock the image store (${lock})`, {
        hint: 'check that the image store directory is writable (COG_IMAGE_STORE chooses another)',
        cause: taken.cause,
      });
    try {
      return await work();
    } finally {
      await releaseLockFile(lock);
    }
  }

  /** Replaces index.json with `next`, atomically; call it holding the lock. */
  private async writeIndex(next: OciIndex): Promise<void> {
    const index = join(this.root, 'index.json');
    const temp = join(this.root, `index.json.${process.pid}.tmp`);
    try {
      await writeFile(temp, `${JSON.stringify(next, null, 2)}\n`);
      await rename(temp, index);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw storeWriteError(index, err);
    }
  }

  /**
   * Files the image whose manifest the daemon wrote into this store (an oci export with tar=false,
   * through the session's content store) under `name`, once its manifest blob is here.
   */
  async tag(name: string, manifest: Descriptor): Promise<Descriptor | undefined> {
    await this.ensureLayout();
    // the manifest and everything it reaches must be here, or the name would point at a broken image
    const unreadable = new Map<string, string>();
    const descriptors: Descriptor[] = [];
    const reached = await this.reachableFrom(
      [manifest],
      (err) => unreadable.set(err.digest, err.reason),
      (descriptor) => descriptors.push(descriptor),
    );
    const [damaged, reason] = [...unreadable][0] ?? [];
    if (damaged !== undefined) {
      // the daemon (or putBlob) found the blob in the store and kept it: it was damaged before this build
      const usedBy = await this.namesReaching((await this.index()).manifests, damaged);
      throw new DamagedBlobError(
        damaged,
        `blob ${damaged} of the image built as ${name} in the local image store is not JSON (${reason}): it is damaged`,
        { usedBy },
      );
    }
    const missing = [...reached].find((digest) => !this.hasBlob(digest));
    if (missing)
      throw new CogError(`the image store lacks ${missing}, part of the exported image ${manifest.digest}`, {
        hint: 'build again; if it persists, remove the store directory',
      });
    // the daemon keeps a blob the store has: a copy cut short before this build stays cut
    await this.refuseCutBlobs(descriptors, `the image built as ${name}`);
    const plain: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
    if (manifest.platform) plain.platform = manifest.platform;
    return this.locked(async () => {
      const index = await this.index();
      const previous = index.manifests.find((m) => m.annotations?.[refNameAnnotation] === name);
      await this.writeIndex(withTaggedManifest(index, name, plain));
      // the content store's staging directory, when no other write is in progress
      await rmdir(join(this.root, 'ingest')).catch(() => {});
      return previous;
    });
  }

  /** Takes `names` out of the index (their blobs stay until the next collection). */
  async untag(names: readonly string[]): Promise<void> {
    await this.locked(async () => {
      const index = await this.index();
      const manifests = index.manifests.filter(
        (m) => !names.includes(m.annotations?.[refNameAnnotation] ?? ''),
      );
      await this.writeIndex({ ...index, manifests });
    });
  }

  /** The digests of the blobs in the store (none when it has no blobs directory). */
  async blobDigests(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(join(this.root, 'blobs', 'sha256'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names.filter((hex) => /^[0-9a-f]{64}$/.test(hex)).map((hex) => `sha256:${hex}`);
  }

  /** Parsed JSON of a blob, or undefined when the store lacks it. */
  private async readJson(digest: string): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(blobPath(this.root, digest), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new UnreadableManifestError(digest, (err as Error).message);
    }
  }

  /**
   * Every digest an image (a manifest or index, by its digest) reaches in the store, itself included;
   * empty when the store does not have it.
   */
  async blobsOf(digest: string): Promise<Set<string>> {
    const json = await this.readJson(digest);
    if (json === undefined || json === null) return new Set();
    const mediaType = manifestMediaTypeOf(json) ?? ociManifestType;
    return this.reachableFrom([{ digest, mediaType, size: 0 }]);
  }

  /**
   * The names whose images use blob `digest` (their manifest is it, or reaches it), in index order; a
   * name whose image cannot be read is left out.
   */
  async namesUsing(digest: string): Promise<string[]> {
    const names: string[] = [];
    for (const manifest of (await this.index()).manifests) {
      const name = manifest.annotations?.[refNameAnnotation];
      if (name === undefined) continue;
      const uses =
        manifest.digest === digest ||
        (await this.blobsOf(manifest.digest).then(
          (reached) => reached.has(digest),
          () => false,
        ));
      if (uses && !names.includes(name)) names.push(name);
    }
    return names;
  }

  private reachableFrom(
    roots: readonly Descriptor[],
    onUnreadable?: (err: UnreadableManifestError) => void,
    onReached?: (descriptor: Descriptor) => void,
  ): Promise<Set<string>> {
    return reachableDigests(roots, (digest) => this.readJson(digest), onUnreadable, onReached);
  }

  /**
   * Refuses an image one of whose blobs is not the size its descriptor gives (a copy cut short, or
   * damaged otherwise), naming the blob and the images that use it, before the daemon reads it (which
   * would fail with a bare "short read") or a build files the image. `image`: the image, for the message.
   * @throws DamagedBlobError
   */
  async checkBlobSizes(manifest: Descriptor, image: string): Promise<void> {
    const descriptors: Descriptor[] = [];
    await this.reachableFrom([manifest], undefined, (descriptor) => descriptors.push(descriptor));
    await this.refuseCutBlobs(descriptors, image);
  }

  private async refuseCutBlobs(descriptors: readonly Descriptor[], image: string): Promise<void> {
    for (const { digest, size } of descriptors) {
      const actual = await stat(blobPath(this.root, digest)).then(
        (s) => s.size,
        () => undefined,
      );
      if (actual === undefined || size <= 0 || actual === size) continue;
      throw wrongSizeError(
        digest,
        `${image} in the local image store`,
        actual,
        size,
        await this.namesUsing(digest),
      );
    }
  }

  /** The names among `roots` whose images reach the unreadable manifest `digest`, in index order. */
  private async namesReaching(roots: readonly Descriptor[], digest: string): Promise<string[]> {
    const names: string[] = [];
    for (const root of roots) {
      const name = root.annotations?.[refNameAnnotation];
      if (name === undefined || names.includes(name)) continue;
      let meets = false;
      await this.reachableFrom([root], (err) => {
        if (err.digest === digest) meets = true;
      });
      if (meets) names.push(name);
    }
    return names;
  }

  /**
   * Adds to `keep` every blob the damaged manifests may still reference: the digests their text
   * names, and what those reach when they are manifests themselves (a damaged index's children).
   * Further damaged manifests met on the way are added to `damaged` and read the same way.
   */
  private async keepNamedByDamaged(keep: Set<string>, damaged: Map<string, string>): Promise<void> {
    const scanned = new Set<string>();
    for (let more = true; more;) {
      more = false;
      for (const digest of [...damaged.keys()]) {
        if (scanned.has(digest)) continue;
        scanned.add(digest);
        more = true;
        const text = await readFile(blobPath(this.root, digest), 'latin1').catch(() => '');
        for (const named of digestsNamedIn(text)) {
          if (keep.has(named) || !this.hasBlob(named)) continue;
          const mediaType = await this.sniffManifestType(named);
          const reached = await this.reachableFrom([{ digest: named, mediaType, size: 0 }], (err) =>
            damaged.set(err.digest, err.reason),
          );
          for (const d of reached) keep.add(d);
        }
      }
    }
  }

  /** A blob's media type as far as the walk needs it: a manifest or index when it is one, else opaque. */
  private async sniffManifestType(digest: string): Promise<string> {
    const file = blobPath(this.root, digest);
    // manifests are small (registries take at most 4 MiB): a larger blob is a layer, not read
    if ((await lstat(file)).size > 4 * 1024 * 1024) return 'application/octet-stream';
    let json: unknown;
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch {
      return 'application/octet-stream';
    }
    return manifestMediaTypeOf(json) ?? 'application/octet-stream';
  }

  /**
   * Marks the store as in use by this process until `release` is called: while another process holds
   * a live lease, no process collects garbage (it might be writing blobs it has not named yet, or
   * reading an image someone re-tags). Taken under the lock, so no collection is half-way through.
   * `ifExists`: a reader's lease, not taken (and no store made) when there is no store yet.
   */
  async lease(options: { ifExists?: boolean } = {}): Promise<{ release: () => Promise<void> }> {
    if (options.ifExists && !existsSync(join(this.root, 'index.json'))) return { release: async () => {} };
    const dir = join(this.root, 'leases');
    const file = join(dir, `${process.pid}-${randomBytes(6).toString('hex')}.json`);
    const start = await processStartTicks('self');
    const holder: LeaseHolder = { pid: process.pid, host: hostname(), ...(start ? { start } : {}) };
    await this.locked(async () => {
      await makeStoreDir(this.root, dir);
      await writeFile(file, `${JSON.stringify(holder)}\n`).catch(async (err: unknown) => {
        await rm(file, { force: true }).catch(() => undefined);
        throw storeWriteError(file, err);
      });
    });
    return { release: () => rm(file, { force: true }) };
  }

  /** Runs `work` holding a lease (see `lease`). */
  async whileLeased<T>(work: () => Promise<T>, options: { ifExists?: boolean } = {}): Promise<T> {
    const lease = await this.lease(options);
    try {
      return await work();
    } finally {
      await lease.release();
    }
  }

  /**
   * The other processes holding a live lease, as `pid N` (or the lease file that cannot be read).
   * Leases of processes that are gone (or whose pid another process has now) are removed on the way,
   * and so are leases that are not JSON: leases are written under the lock this runs under, so one is
   * never half-written now — it was left by a write that failed (a full disk) or a crash.
   */
  private async otherLeaseHolders(): Promise<string[]> {
    const dir = join(this.root, 'leases');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const host = hostname();
    const holders: string[] = [];
    for (const name of names) {
      const file = join(dir, name);
      let text: string;
      let ageMs: number;
      try {
        text = await readFile(file, 'utf8');
        ageMs = Date.now() - (await lstat(file)).mtimeMs;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        holders.push(`the lease ${file}, which cannot be read`);
        continue;
      }
      const holder = parseLease(text);
      if (holder && holder.pid === process.pid && holder.host === host) continue;
      const start =
        holder?.start !== undefined && holder.host === host ? await processStartTicks(holder.pid) : undefined;
      if (holder && leaseIsLive(holder, ageMs, { host, isAlive: processIsAlive, startOf: () => start }))
        holders.push(holder.host === host ? `pid ${holder.pid}` : `pid ${holder.pid} on ${holder.host}`);
      else await rm(file, { force: true });
    }
    return holders;
  }

  /**
   * Removes the blobs no named image reaches (images replaced under their name, writes of builds
   * that stopped before naming their image) and staging files of such writes. Does nothing while
   * another process holds a lease. Returns what it removed.
   *
   * A named image whose manifest is damaged (unreadable) may reference any blob: without `released`
   * (`cog image prune`), the collection then removes nothing and throws UnreadableManifestError naming
   * the image. With `released` (the images whose names were just removed by `cog image rm`, or moved
   * to a new image by a build; none for a new name), it removes only the blobs those reached that no
   * readable image reaches and no damaged manifest names, keeps every other blob (whose users are
   * unknown), and reports the damaged images in `damaged`.
   */
  async collectGarbage(
    options: { readonly released?: readonly Descriptor[] } = {},
  ): Promise<GarbageCollected> {
    const none: GarbageCollected = { blobs: 0, bytes: 0, skipped: false };
    // no store yet: nothing to collect, and no directory made for nothing
    if (!existsSync(join(this.root, 'blobs', 'sha256'))) return none;
    return this.locked(async () => {
      const heldBy = await this.otherLeaseHolders();
      if (heldBy.length > 0) return { ...none, skipped: true, heldBy };
      const roots = (await this.index()).manifests;
      const damaged = new Map<string, string>();
      const keep = await this.reachableFrom(roots, (err) => damaged.set(err.digest, err.reason));
      let candidates: readonly string[];
      const report: DamagedImage[] = [];
      if (damaged.size === 0) {
        candidates = await this.blobDigests();
      } else {
        const [digest, reason] = [...damaged][0] as [string, string];
        // name the images whose walk meets it: they are what to remove (cog image ls cannot tell)
        if (options.released === undefined)
          throw new UnreadableManifestError(digest, reason, await this.namesReaching(roots, digest));
        await this.keepNamedByDamaged(keep, damaged);
        for (const [d, r] of damaged)
          report.push({ digest: d, reason: r, names: await this.namesReaching(roots, d) });
        // only what the released images reached: any other blob may be a damaged manifest's
        candidates = [...(await this.reachableFrom(options.released, () => undefined))];
      }
      const removed: GarbageCollected = { ...none, ...(report.length > 0 ? { damaged: report } : {}) };
      for (const digest of candidates) {
        if (keep.has(digest)) continue;
        const file = blobPath(this.root, digest);
        let size: number;
        try {
          ({ size } = await lstat(file));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        await rm(file, { force: true });
        removed.blobs += 1;
        removed.bytes += size;
      }
      const ingestDir = join(this.root, 'ingest');
      const staged = await readdir(ingestDir).catch(() => [] as string[]);
      for (const name of staged) if (name.endsWith('.tmp')) await rm(join(ingestDir, name), { force: true });
      await rmdir(ingestDir).catch(() => {});
      return removed;
    });
  }
}

/** A named image whose manifest (or a manifest it reaches) is unreadable. */
export interface DamagedImage {
  /** the unreadable manifest */
  readonly digest: string;
  readonly reason: string;
  /** the names whose images reach it */
  readonly names: readonly string[];
}

/** What a collection removed; `skipped` when another process's lease stopped it. */
export interface GarbageCollected {
  blobs: number;
  bytes: number;
  skipped: boolean;
  /** who holds the leases that stopped it (`pid N`), when skipped */
  heldBy?: readonly string[];
  /** damaged images the collection went around (only with `released`; see collectGarbage) */
  damaged?: readonly DamagedImage[];
}

/** A lease file's holder; undefined when the file is not a lease (empty, not JSON). */
function parseLease(text: string): LeaseHolder | undefined {
  try {
    const json: unknown = JSON.parse(text);
    if (isRecord(json) && typeof json.pid === 'number' && typeof json.host === 'string')
      return {
        pid: json.pid,
        host: json.host,
        ...(typeof json.start === 'string' ? { start: json.start } : {}),
      };
  } catch {
    // not JSON
  }
  return undefined;
}

/** A write into the store that failed (a full disk, a read-only store), naming the file. */
function storeWriteError(file: string, err: unknown): CogError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOSPC' ? 'no space left on the device' : (code ?? String(err));
  return new CogError(`cannot write ${file} in the local image store: ${why}`, {
    hint:
      code === 'ENOSPC'
        ? 'free some disk space (`cog image ls` shows what the store holds), or choose another store with COG_IMAGE_STORE'
        : 'check that the image store directory is writable, or choose another store with COG_IMAGE_STORE',
    cause: err,
  });
}
