/**
 * The pure half of a source-only rebuild (build/source-rebuild.ts does the I/O): the key of
 * everything below an image's source layer, and the image that results from replacing that layer.
 *
 * A model image is its base, the dependency steps and the weights (everything the plan compiles
 * below the source), then one layer holding `/src`. When the graph below the source is the same as
 * in the last build (same key), that build's layers below the source are exactly what BuildKit would
 * make again, so the new image is the old one with a new top layer and the new config.
 */
import type { OciImageConfig } from '../buildkit/gateway.js';
import type { State } from '../llb/index.js';
import type { Descriptor } from '../image/store.js';
import type { pb_Platform } from '../gen/types.js';
import { sha256Digest } from '../registry/manifests.js';
import { freezeLabels } from './freeze-labels.js';

/**
 * The key of the graph below the source layer: the digest of its marshalled definition, which covers
 * every op and input by content (base image pinned by digest, commands, embedded files, env). Undefined
 * when that graph reads files from the client (a local wheel, --separate-weights): their contents are
 * not in the definition, so the key could not see them change.
 */
export function belowSourceKey(below: State, platform: pb_Platform): string | undefined {
  const marshalled = below.marshal({ platform, localUniqueId: 'cog-ts:below-source' });
  const readsClient = marshalled.ops.some((op) => op.op.source?.identifier?.startsWith('local://'));
  return readsClient ? undefined : marshalled.resultDigest;
}

export interface OciManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface NextImage {
  readonly manifest: Buffer;
  readonly manifestMediaType: string;
  readonly config: Buffer;
  readonly configDescriptor: Descriptor;
  readonly layerDescriptor: Descriptor;
}

/** The config media type of a manifest's kind (OCI or Docker v2). */
const configMediaType = (manifest: OciManifest) =>
  manifest.config.mediaType || 'application/vnd.oci.image.config.v1+json';

/**
 * The image the last build made with its top (source) layer replaced by `layer` and its settings by
 * `settings` (the plan's config for this build: labels, env, entrypoint); `run.cog.pip_freeze` and
 * `run.cog.version` carry over from the last build, whose packages the layers below are. The history
 * entry of the source layer says `date` (the project's newest change, so the same project makes the
 * same image); the image's `created` stays the base image's, as BuildKit's exporter leaves it.
 */
export function nextSourceImage(
  previous: { readonly manifest: OciManifest; readonly config: OciImageConfig },
  layer: { readonly digest: string; readonly diffId: string; readonly size: number },
  settings: NonNullable<OciImageConfig['config']>,
  date: Date,
): NextImage {
  const { manifest, config } = previous;
  const top = manifest.layers.at(-1);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (!top || diffIds.length !== manifest.layers.length)
    throw new Error('the last image has no source layer to replace');
  const created = date.toISOString();
  const history = [...(config.history ?? [])];
  const topHistory = history.findLastIndex((h) => h.empty_layer !== true);
  if (topHistory >= 0) history[topHistory] = { ...history[topHistory], created };
  const freeze = config.config?.Labels?.['run.cog.pip_freeze'];
  const nextConfig: OciImageConfig = {
    ...config,
    config: {
      ...settings,
      Labels: { ...(settings.Labels ?? {}), ...(freeze !== undefined ? freezeLabels(freeze) : {}) },
    },
    rootfs: { type: config.rootfs?.type ?? 'layers', diff_ids: [...diffIds.slice(0, -1), layer.diffId] },
    history,
  };
  const configBytes = Buffer.from(JSON.stringify(nextConfig));
  const configDescriptor: Descriptor = {
    mediaType: configMediaType(manifest),
    digest: sha256Digest(configBytes),
    size: configBytes.length,
  };
  const layerDescriptor: Descriptor = { mediaType: top.mediaType, digest: layer.digest, size: layer.size };
  const nextManifest: OciManifest = {
    ...manifest,
    config: configDescriptor,
    layers: [...manifest.layers.slice(0, -1), layerDescriptor],
  };
  return {
    manifest: Buffer.from(JSON.stringify(nextManifest)),
    manifestMediaType: manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json',
    config: configBytes,
    configDescriptor,
    layerDescriptor,
  };
}
