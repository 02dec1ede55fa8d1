/** One build: Control.Solve of a Definition, with the status stream followed alongside. */
import type {
  moby_buildkit_v1_CacheOptionsEntry,
  moby_buildkit_v1_Exporter,
  moby_buildkit_v1_SolveResponse,
  moby_buildkit_v1_StatusResponse,
  pb_Definition,
} from '../gen/types.js';
import { type BuildkitClient, newId } from './client.js';
import type { Session } from './session.js';

export interface SolveOptions {
  /** the graph to build; omit it and give `build` to drive the build through the gateway instead */
  readonly definition?: pb_Definition;
  /** the build's id (default: a new one); `buildctl debug histories` lists it */
  readonly ref?: string;
  readonly session?: Session;
  readonly exporters?: readonly moby_buildkit_v1_Exporter[];
  readonly cacheExports?: readonly moby_buildkit_v1_CacheOptionsEntry[];
  readonly cacheImports?: readonly moby_buildkit_v1_CacheOptionsEntry[];
  readonly frontendAttrs?: Readonly<Record<string, string>>;
  /** e.g. `network.host`, `security.insecure` (the daemon must allow them too) */
  readonly entitlements?: readonly string[];
  readonly signal?: AbortSignal;
  /** called with every status update, in order */
  readonly onStatus?: (status: moby_buildkit_v1_StatusResponse) => void;
}

export interface SolveResult {
  readonly ref: string;
  readonly exporterResponse: Record<string, string>;
}

/** How long to keep reading status after the solve returned, when nothing more arrives. */
const statusDrainMs = 5000;

/**
 * Runs Control.Solve with the status stream followed alongside. With `definition` the daemon builds it;
 * without, `whilePending` runs while the solve is open (the gateway build function) and the daemon
 * exports what it returns.
 */
export async function solve(
  client: BuildkitClient,
  options: SolveOptions,
  whilePending?: (ref: string) => Promise<void>,
): Promise<SolveResult> {
  const ref = options.ref ?? newId();
  const status = client.status(ref);
  const statusDone = new Promise<void>((resolve) => {
    status.on('data', (update: moby_buildkit_v1_StatusResponse) => options.onStatus?.(update));
    status.on('end', resolve);
    status.on('error', () => resolve()); // the solve's own result carries the error that matters
  });
  let response: moby_buildkit_v1_SolveResponse;
  try {
    const solving = client.solve(
      {
        Ref: ref,
        ...(options.definition ? { Definition: options.definition } : {}),
        ...(options.session ? { Session: options.session.id } : {}),
        Exporters: [...(options.exporters ?? [])],
        Cache: { Exports: [...(options.cacheExports ?? [])], Imports: [...(options.cacheImports ?? [])] },
        FrontendAttrs: { ...(options.frontendAttrs ?? {}) },
        Entitlements: [...(options.entitlements ?? [])],
      },
      options.signal,
    );
    if (whilePending) {
      // when the solve fails first (bad request, cancelled), that is the error to report
      const solveFailed = new Promise<never>((_resolve, reject) => {
        solving.catch(reject);
      });
      await Promise.race([whilePending(ref), solveFailed]);
    }
    response = await solving;
  } finally {
    // a cancelled build says nothing more worth waiting for
    if (options.signal?.aborted) status.cancel();
    await drain(statusDone, status);
  }
  return { ref, exporterResponse: response.ExporterResponse ?? {} };
}

async function drain(done: Promise<void>, stream: { cancel(): void }): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      stream.cancel();
      resolve();
    }, statusDrainMs);
  });
  await Promise.race([done, timeout]);
  clearTimeout(timer);
}
