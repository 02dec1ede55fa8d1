/**
 * `cog inspect IMAGE`: a model image's labels, cog config, OpenAPI schema and size, read from its
 * manifest and config only (never a layer). IMAGE is looked up in the local image store first (by the
 * name `cog build -t` gave it), then in its registry; `--local` / `--remote` pick one source.
 */
import { CogError } from '../errors.js';
import { type ImageInspection, formatInspection, inspectImage, inspectionJson } from '../image/inspect.js';
import { ImageStore, imageStoreDir } from '../image/store.js';
import { missingBlobError } from '../image/damaged-blob.js';
import { findStoredImage } from '../image/find.js';
import {
  type Platform,
  RegistryClient,
  fetchImage,
  formatReference,
  isIndexMediaType,
  parseReference,
  checkImagePlatform,
  childFor,
  DamagedBlobError,
  RegistryError,
  defaultRetryPolicy,
} from '../registry/index.js';
import type { CommandIo } from './debug-solve.js';
import { withInterrupt } from './interrupt.js';
import { retryLine } from './retry-line.js';
import { hasTag } from '../registry/model-ref.js';
import { readPlatformSpec } from './platform-spec.js';

export interface InspectArgs {
  readonly image: string;
  readonly json: boolean;
  /** only the local image store / only the registry; neither: the store first, then the registry */
  readonly local: boolean;
  readonly remote: boolean;
  /** os/arch[/variant] picked from an index (default: linux/amd64, else the first image it has) */
  readonly platform: string | undefined;
}

/** `--platform` of cog inspect: one os/architecture[/variant] or an architecture, read as buildx reads it. */
export function parsePlatform(value: string | undefined): Platform {
  if (value === undefined) return { os: 'linux', architecture: 'amd64' };
  if (value.trim() === '')
    throw new CogError('--platform needs a value: os/architecture[/variant]', {
      hint: 'e.g. --platform linux/arm64',
    });
  if (value.includes(','))
    throw new CogError(`--platform ${value}: cog inspect shows one platform's image`, {
      hint: 'give one, e.g. --platform linux/arm64 (without --platform, an index shows its linux/amd64 image)',
    });
  const platform = readPlatformSpec(value);
  if (!platform)
    throw new CogError(`--platform ${value} is not os/architecture[/variant]`, {
      hint: 'e.g. --platform linux/arm64 (or arm64)',
    });
  return platform;
}

interface JsonManifest {
  mediaType?: string;
  config?: { digest: string; size?: number; mediaType?: string };
  layers?: { digest: string; size: number; mediaType?: string }[];
  manifests?: { digest: string; mediaType?: string; platform?: Partial<Platform> }[];
}

/**
 * A stored name as inspect reports it: with its tag, `latest` when it names none (the registry side
 * reports `REGISTRY/REPO:TAG` the same way); the store's own spelling otherwise, which is no registry's.
 */
function taggedName(name: string): string {
  return name.includes('@') || hasTag(name) ? name : `${name}:latest`;
}

/** The image stored under `name` in the local store, or undefined when the store has no such name. */
export async function inspectLocal(
  store: ImageStore,
  name: string,
  platform: Platform,
  exactPlatform = false,
): Promise<ImageInspection | undefined> {
  // `hello`, `hello:latest` and `docker.io/library/hello:latest` are one image, as for docker
  const found = await findStoredImage(store, name);
  const top = found?.manifest;
  if (!top) return undefined;
  // a blob that is not JSON is damaged (cut short, or overwritten): named so, with how to mend the store
  const readJson = async <T = JsonManifest>(digest: string): Promise<T> => {
    let text: string;
    try {
      text = (await store.readBlob(digest)).toString('utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // gone (a config or child manifest): a build writes it again once the name is removed
      throw missingBlobError('blob', digest, name, [found.name], err);
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      // this image first: namesUsing leaves out a name whose image it cannot read (this one, maybe)
      const usedBy = [...new Set([found.name, ...(await store.namesUsing(digest).catch(() => []))])];
      throw new DamagedBlobError(
        digest,
        `blob ${digest} of ${name} in the local image store is not JSON: it is damaged`,
        {
          usedBy,
        },
      );
    }
  };
  let manifestDigest = top.digest;
  let manifest = await readJson(top.digest);
  if (isIndexMediaType(top.mediaType) || Array.isArray(manifest.manifests)) {
    const child = childFor(`${name} in the local image store`, manifest as never, platform, exactPlatform);
    if (!child) throw new CogError(`${name} in the local image store is an empty index`);
    manifestDigest = child;
    manifest = await readJson(child);
  }
  if (!manifest.config?.digest)
    throw new CogError(`${name} in the local image store has no image config`, {
      hint: 'rebuild it with `cog build`',
    });
  const config = await readJson<Record<string, unknown>>(manifest.config.digest);
  if (exactPlatform && manifestDigest === top.digest)
    checkImagePlatform(`${name} in the local image store`, config, platform);
  // a name pinned by digest is reported with it, as the registry side reports it
  const pinned = name.includes('@') && !found.name.includes('@') ? name.slice(name.indexOf('@')) : '';
  return inspectImage({
    reference: pinned ? `${found.name}${pinned}` : taggedName(found.name),
    source: 'local',
    digest: top.digest,
    mediaType: top.mediaType,
    manifestDigest,
    manifest,
    config,
  });
}

export async function inspectRemote(
  client: RegistryClient,
  image: string,
  platform: Platform,
  signal: AbortSignal,
  exactPlatform = false,
): Promise<ImageInspection> {
  const reference = parseReference(image);
  const fetched = await fetchImage(client, reference, { platform, signal, exactPlatform });
  const top = fetched.index ?? fetched.manifest;
  return inspectImage({
    reference: formatReference(reference),
    source: 'registry',
    digest: top.digest,
    mediaType: top.mediaType,
    manifestDigest: fetched.manifest.digest,
    manifest: fetched.manifest.json,
    config: fetched.config,
  });
}

export async function inspect(args: InspectArgs, io: CommandIo): Promise<void> {
  if (args.local && args.remote)
    throw new CogError('--local and --remote exclude each other', {
      hint: 'leave both out to look in the local image store first, then the registry',
    });
  parseReference(args.image); // a malformed name is named as one, wherever it would be looked for
  const platform = parsePlatform(args.platform);
  // a platform asked for must be there; without --platform, linux/amd64 or the index's first image
  const exact = args.platform !== undefined;
  let found: ImageInspection | undefined;
  if (!args.remote) {
    const store = new ImageStore(imageStoreDir(io.env));
    found = await inspectLocal(store, args.image, platform, exact);
    if (!found && args.local) {
      // an image is named by a tag, not by a digest: a digest asks for the image a tag holds
      const at = args.image.indexOf('@');
      const hint =
        at === -1
          ? `build it first with \`cog build -t ${args.image}\`, or drop --local to read it from its registry`
          : `the local store finds an image by NAME:TAG@DIGEST, the tag holding that digest (\`cog image ls\` lists them), or drop --local to read ${args.image.slice(0, at)}@… from its registry`;
      throw new CogError(`no image named ${args.image} in the local image store (${store.root})`, { hint });
    }
  }
  if (!found) {
    const client = new RegistryClient({
      env: io.env,
      retry: { ...defaultRetryPolicy, onRetry: (info) => io.stderr.write(`${retryLine(info)}\n`) },
    });
    try {
      found = await withInterrupt(
        io.stderr,
        (signal) => inspectRemote(client, args.image, platform, signal, exact),
        () => `cancelling the inspection of ${args.image}`,
      );
    } catch (err) {
      // looked for locally first: the registry's failure is not the whole story
      if (args.remote || !(err instanceof RegistryError)) throw err;
      throw new CogError(`${args.image} is not in the local image store; its registry: ${err.message}`, {
        ...(err.hint ? { hint: `${err.hint}; or build it here with \`cog build -t ${args.image}\`` } : {}),
        cause: err,
      });
    } finally {
      await client.close();
    }
  }
  io.stdout.write(
    args.json ? `${JSON.stringify(inspectionJson(found), null, 2)}\n` : formatInspection(found),
  );
}
