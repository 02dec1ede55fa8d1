/**
 * Client-side builds through BuildKit's gateway (LLBBridge): a build function resolves image configs,
 * solves definitions to refs, reads files from them, and returns the ref (with image config metadata)
 * that the daemon then exports. All in one Control.Solve, so nothing is built or pushed twice. Containers
 * made of solved refs run processes for `cog serve` and `cog exec` (see runtime/container.ts).
 */
import * as grpc from '@grpc/grpc-js';
import type {
  moby_buildkit_v1_CacheOptionsEntry,
  moby_buildkit_v1_frontend_ExecMessage,
  moby_buildkit_v1_frontend_NewContainerRequest,
  moby_buildkit_v1_frontend_PongResponse,
  moby_buildkit_v1_frontend_ReadFileResponse,
  moby_buildkit_v1_frontend_ResolveImageConfigResponse,
  moby_buildkit_v1_frontend_ReturnRequest,
  moby_buildkit_v1_frontend_SolveResponse,
  moby_buildkit_v1_frontend_StatFileResponse,
  pb_Definition,
  pb_Platform,
} from '../gen/types.js';
import { type BuildkitClient, toBuildkitError, platformsOfWorkers } from './client.js';
import { BuildkitError } from './errors.js';
import { type SolveOptions, type SolveResult, solve } from './solve.js';

export interface ImageConfigResult {
  /** manifest digest for the platform */
  readonly digest: string;
  /** the OCI image config, parsed */
  readonly config: OciImageConfig;
  readonly ref: string;
}

/** The parts of an OCI image config a build reads and writes. */
export interface OciImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: {
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    User?: string;
    Labels?: Record<string, string>;
    ExposedPorts?: Record<string, object>;
    [key: string]: unknown;
  };
  rootfs?: { type: string; diff_ids: string[] };
  history?: { created?: string; created_by?: string; empty_layer?: boolean; comment?: string }[];
  [key: string]: unknown;
}

/**
 * What a build function returns: the ref to export and exporter metadata (e.g. the image config); or,
 * for a multi-platform image, one ref per platform id (e.g. `linux/arm64`) with `refs.platforms` and
 * `containerimage.config/<id>` in the metadata, which the exporters turn into an image index.
 */
export type GatewayResult = (
  | { readonly ref: string; readonly refs?: undefined }
  | { readonly ref?: undefined; readonly refs: Readonly<Record<string, string>> }
) & { readonly metadata?: Readonly<Record<string, string | Uint8Array>> };

export interface ResolveImageConfigOptions {
  readonly platform?: pb_Platform;
  readonly resolveMode?: 'default' | 'pull' | 'local';
  readonly logName?: string;
  /**
   * Where to look: a registry (default), or an OCI layout the client serves over the session as the
   * content store `oci:<storeId>` (then `ref` must carry a digest: NAME@sha256:…).
   */
  readonly ociLayout?: { readonly sessionId: string; readonly storeId: string };
}

export interface Gateway {
  /** the platforms the daemon's workers run (os/architecture[/variant]), from the gateway's Ping */
  readonly workerPlatforms: readonly string[];
  /** the daemon resolves `ref` with its registry config and mirrors and the session's credentials */
  resolveImageConfig(ref: string, options?: ResolveImageConfigOptions): Promise<ImageConfigResult>;
  /** solves a definition and returns the result's ref id; lazily unless `evaluate` */
  solve(definition: pb_Definition, options?: { evaluate?: boolean }): Promise<string>;
  /**
   * Asks a frontend built into the daemon (e.g. `dockerfile.v0`) to build; evaluated. Returns the
   * result's ref, the definition the frontend solved (to build further ops on) and its metadata
   * (e.g. `containerimage.config`).
   */
  solveFrontend(frontend: string, options: Readonly<Record<string, string>>): Promise<FrontendResult>;
  /** a file of `ref`: `range`, or all of it (read in pieces, whatever its size) */
  readFile(ref: string, path: string, range?: { offset: number; length: number }): Promise<Buffer>;
  /** true when `path` exists in `ref` */
  exists(ref: string, path: string): Promise<boolean>;
  /**
   * Creates a container from solved refs (its mounts name them by ResultID); the client picks its
   * ContainerID. It lives until releaseContainer or the end of the build.
   */
  newContainer(request: moby_buildkit_v1_frontend_NewContainerRequest): Promise<void>;
  /** Stops every process of the container and releases its mounts. */
  releaseContainer(id: string): Promise<void>;
  /**
   * Opens an ExecProcess stream: the first message is an Init for a new process, then stdin, resize
   * and signal messages go up, and Started, output, Exit and Done come down.
   */
  execProcess(): ExecStream;
}

export interface FrontendResult {
  readonly ref: string;
  readonly definition: pb_Definition;
  readonly metadata: Readonly<Record<string, Buffer>>;
}

export type ExecStream = grpc.ClientDuplexStream<
  moby_buildkit_v1_frontend_ExecMessage,
  moby_buildkit_v1_frontend_ExecMessage
>;

type Unary = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: grpc.requestCallback<unknown>,
) => grpc.ClientUnaryCall;

/** Bytes per ReadFile call when a whole file is read (buildkitd's messages stop at 16 MiB). */
const readFilePiece = 4 * 1024 * 1024;

class LlbBridge implements Gateway {
  private readonly stub: Record<string, Unary> & grpc.Client;

  constructor(
    client: BuildkitClient,
    private readonly buildRef: string,
    private readonly display: string,
    private readonly signal: AbortSignal | undefined,
    private readonly cacheImports: readonly moby_buildkit_v1_CacheOptionsEntry[] = [],
  ) {
    this.stub = client.serviceClient('moby.buildkit.v1.frontend.LLBBridge') as never;
  }

  /** every call names the build it belongs to: the daemon finds the bridge by it */
  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set('buildkit-controlapi-buildid', this.buildRef);
    return metadata;
  }

  call<Res>(method: string, request: unknown): Promise<Res> {
    const metadata = this.metadata();
    return new Promise((resolve, reject) => {
      const fn = this.stub[method] as Unary;
      const call = fn.call(this.stub, request, metadata, {}, (err, res) => {
        this.signal?.removeEventListener('abort', onAbort);
        if (err) reject(toBuildkitError(err, this.display));
        else resolve(res as Res);
      });
      const onAbort = () => call.cancel();
      if (this.signal?.aborted) call.cancel();
      else this.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  workerPlatforms: readonly string[] = [];

  async ping(): Promise<moby_buildkit_v1_frontend_PongResponse> {
    // the daemon registers the pending solve asynchronously; it waits up to 3 s for it per call
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const pong = await this.call<moby_buildkit_v1_frontend_PongResponse>('Ping', {});
        this.workerPlatforms = platformsOfWorkers(pong.Workers ?? []);
        return pong;
      } catch (err) {
        lastError = err;
        if (this.signal?.aborted) break;
      }
    }
    throw lastError;
  }

  async resolveImageConfig(ref: string, options: ResolveImageConfigOptions = {}): Promise<ImageConfigResult> {
    const response = await this.call<moby_buildkit_v1_frontend_ResolveImageConfigResponse>(
      'ResolveImageConfig',
      {
        Ref: ref,
        ...(options.platform ? { Platform: options.platform } : {}),
        ResolveMode: options.resolveMode ?? 'default',
        LogName: options.logName ?? `[internal] load metadata for ${ref}`,
        // sourceresolver.ResolverType: 0 registry, 1 OCI layout
        ...(options.ociLayout
          ? { ResolverType: 1, SessionID: options.ociLayout.sessionId, StoreID: options.ociLayout.storeId }
          : {}),
      },
    );
    let config: OciImageConfig;
    try {
      config = JSON.parse(Buffer.from(response.Config ?? []).toString('utf8')) as OciImageConfig;
    } catch (err) {
      throw new BuildkitError(`the image config of ${ref} is not JSON`, { cause: err });
    }
    return { digest: response.Digest ?? '', config, ref: response.Ref || ref };
  }

  async solve(definition: pb_Definition, options: { evaluate?: boolean } = {}): Promise<string> {
    const response = await this.call<moby_buildkit_v1_frontend_SolveResponse>('Solve', {
      Definition: definition,
      allowResultReturn: true,
      allowResultArrayRef: true,
      // the daemon applies the build's cache imports only to solves that name them (buildctl's
      // client-side frontends pass them on every solve too)
      ...(this.cacheImports.length > 0 ? { CacheImports: [...this.cacheImports] } : {}),
      ...(options.evaluate ? { Evaluate: true } : {}),
    });
    const id = response.result?.ref?.id ?? response.result?.refDeprecated ?? response.ref;
    if (id === undefined) throw new BuildkitError('the gateway solve returned no ref');
    return id;
  }

  async solveFrontend(frontend: string, options: Readonly<Record<string, string>>): Promise<FrontendResult> {
    const response = await this.call<moby_buildkit_v1_frontend_SolveResponse>('Solve', {
      Frontend: frontend,
      FrontendOpt: { ...options },
      allowResultReturn: true,
      allowResultArrayRef: true,
      ...(this.cacheImports.length > 0 ? { CacheImports: [...this.cacheImports] } : {}),
      Evaluate: true,
    });
    const ref = response.result?.ref;
    if (!ref?.id || !ref.def)
      throw new BuildkitError(`the ${frontend} frontend returned no single result`, {
        hint: 'build one platform and one target at a time',
      });
    const metadata = Object.fromEntries(
      Object.entries(response.result?.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v)]),
    );
    return { ref: ref.id, definition: ref.def, metadata };
  }

  async readFile(ref: string, path: string, range?: { offset: number; length: number }): Promise<Buffer> {
    if (range) return this.readRange(ref, path, range.offset, range.length);
    // whole, in pieces: buildkitd sends no gRPC message over 16 MiB (a model's output can be larger)
    const pieces: Buffer[] = [];
    for (let offset = 0; ;) {
      const piece = await this.readRange(ref, path, offset, readFilePiece);
      pieces.push(piece);
      offset += piece.length;
      if (piece.length < readFilePiece) return pieces.length === 1 ? piece : Buffer.concat(pieces);
    }
  }

  private async readRange(ref: string, path: string, offset: number, length: number): Promise<Buffer> {
    const response = await this.call<moby_buildkit_v1_frontend_ReadFileResponse>('ReadFile', {
      Ref: ref,
      FilePath: path,
      Range: { Offset: offset, Length: length },
    });
    return Buffer.from(response.Data ?? []);
  }

  async exists(ref: string, path: string): Promise<boolean> {
    try {
      await this.call<moby_buildkit_v1_frontend_StatFileResponse>('StatFile', { Ref: ref, Path: path });
      return true;
    } catch (err) {
      if (/no such file|not found/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  async newContainer(request: moby_buildkit_v1_frontend_NewContainerRequest): Promise<void> {
    await this.call('NewContainer', request);
  }

  async releaseContainer(id: string): Promise<void> {
    await this.call('ReleaseContainer', { ContainerID: id });
  }

  execProcess(): ExecStream {
    const open = (this.stub as unknown as Record<string, (md: grpc.Metadata) => ExecStream>).ExecProcess;
    const stream = (open as (md: grpc.Metadata) => ExecStream).call(this.stub, this.metadata());
    const onAbort = () => stream.cancel();
    if (this.signal?.aborted) stream.cancel();
    else {
      this.signal?.addEventListener('abort', onAbort, { once: true });
      stream.on('close', () => this.signal?.removeEventListener('abort', onAbort));
    }
    return stream;
  }

  async return(result: GatewayResult | { error: Error }): Promise<void> {
    const request: moby_buildkit_v1_frontend_ReturnRequest =
      'error' in result
        ? { error: { code: grpc.status.UNKNOWN, message: result.error.message } }
        : {
            result: {
              ...(result.refs
                ? {
                    refs: {
                      refs: Object.fromEntries(Object.entries(result.refs).map(([k, id]) => [k, { id }])),
                    },
                  }
                : { ref: { id: result.ref } }),
              metadata: Object.fromEntries(
                Object.entries(result.metadata ?? {}).map(([k, v]) => [
                  k,
                  typeof v === 'string' ? Buffer.from(v) : v,
                ]),
              ),
            },
          };
    await this.call('Return', request);
  }
}

/**
 * Runs `build` as a client-side frontend. Exporters, cache, session and progress come from `options`;
 * the ref the function returns is exported. A failing function fails the build with its error.
 */
export async function gatewayBuild(
  client: BuildkitClient,
  options: Omit<SolveOptions, 'definition'>,
  build: (gateway: Gateway) => Promise<GatewayResult>,
): Promise<SolveResult> {
  let buildError: unknown;
  const result = await solve(client, options, async (ref) => {
    // the bridge shares the client's channel: closing it would close the client too
    const bridge = new LlbBridge(client, ref, client.address.display, options.signal, options.cacheImports);
    await bridge.ping();
    let returned: GatewayResult;
    try {
      returned = await build(bridge);
    } catch (err) {
      buildError = err;
      await bridge.return({ error: err instanceof Error ? err : new Error(String(err)) }).catch(() => {});
      return;
    }
    await bridge.return(returned);
  }).catch((err: unknown) => {
    // the daemon reports the function's error back; prefer the original, typed one
    throw buildError ?? err;
  });
  return result;
}
