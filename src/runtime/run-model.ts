/**
 * Runs a model once without Docker: a BuildKit exec on the image starts the Cog server, waits for
 * READY, POSTs one request read from a client directory (so inputs of any size stream over the
 * session), and leaves the server's answers in a small filesystem the caller reads back.
 */
import type { BuildkitClient } from '../buildkit/client.js';
import type { Gateway, ImageConfigResult, OciImageConfig } from '../buildkit/gateway.js';
import { CogError } from '../errors.js';
import { findStoredImage } from '../image/find.js';
import type { ImageStore } from '../image/store.js';
import { type State, image, local, normalizeImageRef, ociLayout } from '../llb/index.js';
import { notReadyDetail, wholeOutputHint } from './server-output.js';
import { type SmokeReport, isProbeFailure, probeRecordDescriptions, smokeTest } from './smoke.js';

/** The name under which the session serves the directory holding request.json. */
export const inputDirName = 'cog-input';

/**
 * Removes from buildkitd's cache what runs left there of their inputs (the synced request directory)
 * and outputs (the probe's /out and root filesystem), once nothing uses them: as `docker run --rm`
 * leaves nothing of a prediction behind. Records in use (a run still going) are kept by buildkitd.
 */
export async function forgetRunRecords(client: BuildkitClient, signal?: AbortSignal): Promise<number> {
  const descriptions = [`local source for ${inputDirName}`, ...probeRecordDescriptions];
  let removed = 0;
  await client.prune(
    // one filter per description: buildkitd removes what matches any of them
    { filter: descriptions.map((d) => `description==${JSON.stringify(d)}`) },
    () => removed++,
    signal,
  );
  return removed;
}

export interface RunOnceOptions {
  readonly mode: 'predict' | 'train';
  /** seconds to wait for setup */
  readonly setupTimeout: number;
  /** `-e NAME=VALUE` */
  readonly env: Readonly<Record<string, string>>;
  readonly platform?: { readonly OS: string; readonly Architecture: string };
  /** CDI devices (GPUs) for the server */
  readonly devices?: readonly string[];
  /** a session secret holding the Replicate API token for the request's context */
  readonly replicateTokenSecret?: string;
  /** the run's step says when the model is READY, for watchingForReady (see ready-signal.ts) */
  readonly announceReady?: boolean;
}

/** The name of the step that runs the model, in progress output. */
export function runStepName(mode: 'predict' | 'train'): string {
  return mode === 'train' ? 'run the model: /trainings' : 'run the model: /predictions';
}

export async function runOnce(
  gw: Gateway,
  model: State,
  options: RunOnceOptions,
): Promise<{ report: SmokeReport; ref: string }> {
  const probe = smokeTest(model, {
    mode: options.mode,
    setupTimeout: options.setupTimeout,
    env: options.env,
    inputFrom: local(inputDirName, { name: 'load the inputs' }),
    ...(options.devices?.length ? { devices: options.devices } : {}),
    ...(options.replicateTokenSecret ? { replicateTokenSecret: options.replicateTokenSecret } : {}),
    ...(options.announceReady ? { announceReady: true } : {}),
    name: runStepName(options.mode),
  });
  let id: string;
  try {
    id = await gw.solve(probe.marshal(options.platform ? { platform: options.platform } : {}).definition, {
      evaluate: true,
    });
  } catch (err) {
    // the image's python did not start (or died) before any server answered: with -e, those values are
    // what it started with (a PATH without python: "executable file not found")
    if (!isProbeFailure(err)) throw err;
    const names = Object.keys(options.env);
    throw new CogError(`the model's runtime could not start in its image: ${(err as Error).message}`, {
      hint:
        names.length > 0
          ? `-e sets ${names.join(', ')} for it: check those values; ${wholeOutputHint}`
          : wholeOutputHint,
      cause: err,
    });
  }
  const report = JSON.parse((await gw.readFile(id, '/smoke.json')).toString('utf8')) as SmokeReport;
  return { report, ref: id };
}

export interface ResolvedModelImage {
  readonly state: State;
  readonly config: OciImageConfig;
  /** the OpenAPI schema from the run.cog.openapi_schema label, when the image has one */
  readonly schema: unknown;
}

/** The local image store as the session serves it to the daemon (see runtime/local-images.ts). */
export interface LocalImageSource {
  readonly store: ImageStore;
  /** the content store id: the daemon asks the session for store `oci:<storeId>` */
  readonly storeId: string;
  readonly sessionId: string;
}

/** `docker.io/library/x:tag` → `docker.io/library/x`: the name part of a normalised reference. */
function repository(normalized: string): string {
  const name = normalized.split('@')[0] as string;
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? name.slice(0, colon) : name;
}

/**
 * An image by reference: from the local image store when it holds `ref` (like `docker run` prefers local
 * images), read by the daemon over the session; else through the daemon's registry access (its mirrors
 * and the session's credentials).
 */
export async function resolveModelImage(
  gw: Gateway,
  ref: string,
  options: { readonly local?: LocalImageSource } = {},
): Promise<ResolvedModelImage & { readonly from: 'local' | 'registry' }> {
  const stored = options.local ? await findStoredImage(options.local.store, ref) : undefined;
  let resolved: ImageConfigResult;
  let source: (config: OciImageConfig['config']) => State;
  if (stored && options.local) {
    // a blob cut short is named here, not by the daemon's bare "short read"
    await options.local.store.checkBlobSizes(stored.manifest, stored.name);
    const { storeId, sessionId } = options.local;
    const pinned = `${repository(normalizeImageRef(stored.name))}@${stored.manifest.digest}`;
    resolved = await gw.resolveImageConfig(pinned, {
      ociLayout: { sessionId, storeId },
      logName: `[internal] load metadata for ${stored.name} (local image store)`,
    });
    source = (config) => ociLayout(pinned, { sessionId, storeId, config: config ?? {} });
  } else {
    const normalized = normalizeImageRef(ref);
    resolved = await gw.resolveImageConfig(normalized);
    source = (config) => image(`${normalized}@${resolved.digest}`, { config: config ?? {} });
  }
  const labels = resolved.config.config?.Labels ?? {};
  if (!labels['run.cog.config'] && !labels['org.cogmodel.config']) {
    throw new CogError(`${ref} does not appear to be a Cog model (it has no run.cog.config label)`, {
      hint: 'build it with `cog build`, or run a model image',
    });
  }
  let schema: unknown;
  if (labels['run.cog.openapi_schema']) {
    try {
      schema = JSON.parse(labels['run.cog.openapi_schema']);
    } catch {
      schema = undefined;
    }
  }
  const state = source(resolved.config.config).withCwd(resolved.config.config?.WorkingDir || '/src');
  return { state, config: resolved.config, schema, from: stored ? 'local' : 'registry' };
}

/** Why a run did not produce an answer, as a user-facing error; undefined when it did. */
export function runFailure(report: SmokeReport, setupTimeout?: number): CogError | undefined {
  const status = report.health?.status;
  // the quiet progress view shows none of the server's output: its error carries the last of it
  if (status === 'SETUP_FAILED')
    return new CogError(`Model setup failed${notReadyDetail(report)}`, { hint: wholeOutputHint });
  if (status !== 'READY') {
    // the probe's own limit is --setup-timeout: name the flag, which is what to change
    const why =
      report.error === 'no READY within the timeout' && setupTimeout !== undefined
        ? `not READY within --setup-timeout ${setupTimeout} s; raise it if setup takes longer`
        : (report.error ?? `status ${status ?? 'unknown'}`);
    return new CogError(`the model did not become ready (${why})${notReadyDetail(report)}`, {
      hint: wholeOutputHint,
    });
  }
  if (!report.prediction) return new CogError('the model server gave no answer to the request');
  return undefined;
}
