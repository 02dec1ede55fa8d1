/**
 * A client of buildkitd's Control API over gRPC: info, workers, solve, status and the session stream.
 * Every call can be cancelled with an AbortSignal.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type {
  moby_buildkit_v1_DiskUsageRequest,
  moby_buildkit_v1_DiskUsageResponse,
  moby_buildkit_v1_InfoResponse,
  moby_buildkit_v1_ListWorkersResponse,
  moby_buildkit_v1_PruneRequest,
  moby_buildkit_v1_SolveRequest,
  moby_buildkit_v1_SolveResponse,
  moby_buildkit_v1_StatusResponse,
  moby_buildkit_v1_UsageRecord,
  moby_buildkit_v1_types_WorkerRecord,
} from '../gen/types.js';
import { diagnoseConnectFailure } from './connect-diagnosis.js';
import { BuildkitError } from './errors.js';
import { serviceDefinition } from './grpc-services.js';
import { type SessionEndpoint, SessionStream, type StreamMetadata } from './session-stream.js';

/** BuildKit's daemon sends and accepts messages up to 16 MiB; grpc-js defaults to 4 MiB. */
export const messageLimit = 16 * 1024 * 1024;

export interface TlsOptions {
  readonly caCert?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly serverName?: string;
}

export interface BuildkitAddress {
  /** the grpc-js target */
  readonly target: string;
  readonly credentials: grpc.ChannelCredentials;
  /** what the user gave, for messages */
  readonly display: string;
  readonly serverName: string | undefined;
  /** the same address for the session stream, which has a connection of its own */
  readonly endpoint: SessionEndpoint;
}

/** Parses a BUILDKIT_HOST value: `unix:///path/to/buildkitd.sock` or `tcp://host:port` (TLS if given). */
export function parseBuildkitHost(host: string, tls?: TlsOptions): BuildkitAddress {
  const unix = /^unix:\/\/(\/.*)$/.exec(host);
  if (unix) {
    return {
      target: `unix://${unix[1]}`,
      credentials: grpc.credentials.createInsecure(),
      display: host,
      serverName: undefined,
      endpoint: { kind: 'unix', path: unix[1] as string, display: host },
    };
  }
  const tcp = /^tcp:\/\/([^/]+)\/?$/.exec(host);
  if (tcp) {
    const credentials =
      tls && (tls.caCert || tls.cert)
        ? grpc.credentials.createSsl(tls.caCert ?? null, tls.key ?? null, tls.cert ?? null)
        : grpc.credentials.createInsecure();
    const hostPort = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(tcp[1] as string);
    if (!hostPort) {
      throw new BuildkitError(`BUILDKIT_HOST "${host}" has no port`, { hint: 'use tcp://host:port' });
    }
    const endpoint: SessionEndpoint = {
      kind: 'tcp',
      host: (hostPort[1] ?? hostPort[2]) as string,
      port: Number(hostPort[3]),
      display: host,
      ...(tls && (tls.caCert || tls.cert)
        ? {
            tls: {
              ...(tls.caCert ? { ca: tls.caCert } : {}),
              ...(tls.cert ? { cert: tls.cert } : {}),
              ...(tls.key ? { key: tls.key } : {}),
              ...(tls.serverName ? { servername: tls.serverName } : {}),
            },
          }
        : {}),
    };
    return { target: tcp[1] as string, credentials, display: host, serverName: tls?.serverName, endpoint };
  }
  throw new BuildkitError(`unsupported BUILDKIT_HOST "${host}"`, {
    hint: 'use unix:///path/to/buildkitd.sock or tcp://host:port',
  });
}

/** What a user does when nothing answers at `display` (a BUILDKIT_HOST address). */
function unreachableHint(display: string): string {
  return `start buildkitd there (\`buildkitd --addr ${display}\`), or set BUILDKIT_HOST to the address of a running buildkitd (e.g. \`export BUILDKIT_HOST=unix:///run/buildkit/buildkitd.sock\`)`;
}

/** A random build/session id like BuildKit's identity.NewID (25 base-36 characters). */
/** The platforms a daemon's workers run, as os/architecture[/variant] (ListWorkers', or the gateway Ping's). */
export function platformsOfWorkers(workers: readonly moby_buildkit_v1_types_WorkerRecord[]): string[] {
  return workers.flatMap((w) =>
    (w.platforms ?? []).map((p) => [p.OS, p.Architecture, p.Variant].filter(Boolean).join('/')),
  );
}

export function newId(): string {
  const bytes = randomBytes(16);
  return BigInt(`0x${bytes.toString('hex')}`)
    .toString(36)
    .padStart(25, '0')
    .slice(0, 25);
}

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: grpc.requestCallback<Res>,
) => grpc.ClientUnaryCall;

interface ControlStub extends grpc.Client {
  Info: Unary<object, moby_buildkit_v1_InfoResponse>;
  ListWorkers: Unary<object, moby_buildkit_v1_ListWorkersResponse>;
  Solve: Unary<moby_buildkit_v1_SolveRequest, moby_buildkit_v1_SolveResponse>;
  Status(
    req: { Ref: string },
    md?: grpc.Metadata,
  ): grpc.ClientReadableStream<moby_buildkit_v1_StatusResponse>;
  DiskUsage: Unary<moby_buildkit_v1_DiskUsageRequest, moby_buildkit_v1_DiskUsageResponse>;
  Prune(
    req: moby_buildkit_v1_PruneRequest,
    md?: grpc.Metadata,
  ): grpc.ClientReadableStream<moby_buildkit_v1_UsageRecord>;
}

const ControlClientCtor = grpc.makeGenericClientConstructor(
  serviceDefinition('moby.buildkit.v1.Control'),
  'Control',
);

export class BuildkitClient {
  private readonly sessions = new Set<SessionStream>();

  private constructor(
    private readonly stub: ControlStub,
    readonly address: BuildkitAddress,
  ) {}

  /** Connects and waits until the daemon answers, failing within `timeoutMs` with what was tried. */
  static async connect(
    host: string,
    options: { timeoutMs?: number; tls?: TlsOptions; signal?: AbortSignal } = {},
  ): Promise<BuildkitClient> {
    const address = parseBuildkitHost(host, options.tls);
    if (address.endpoint.kind === 'unix' && !existsSync(address.endpoint.path)) {
      // nothing to wait for: say so now rather than after the connect timeout
      throw new BuildkitError(
        `cannot reach buildkitd at ${address.display}: no socket at ${address.endpoint.path}`,
        {
          hint: unreachableHint(address.display),
        },
      );
    }
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': messageLimit,
      'grpc.max_send_message_length': messageLimit,
      ...(address.serverName ? { 'grpc.ssl_target_name_override': address.serverName } : {}),
    };
    const stub = new ControlClientCtor(
      address.target,
      address.credentials,
      channelOptions,
    ) as unknown as ControlStub;
    const timeoutMs = options.timeoutMs ?? 5000;
    const hint = unreachableHint(address.display);
    try {
      await untilReady(stub.getChannel(), Date.now() + timeoutMs, options.signal);
    } catch (err) {
      stub.close();
      // Ctrl-C while waiting for an answer: no more waiting (it waited out the time limit)
      if (options.signal?.aborted)
        throw new BuildkitError(`interrupted while connecting to buildkitd at ${address.display}`, {
          cause: err,
          exitCode: 130,
        });
      // a failed attempt fails now, with its reason, rather than being retried until the deadline
      const reason =
        err instanceof ConnectAttemptFailed
          ? await diagnoseConnectFailure(address.endpoint)
          : `no answer within ${timeoutMs / 1000}s`;
      throw new BuildkitError(`cannot reach buildkitd at ${address.display}: ${reason}`, {
        hint,
        cause: err,
      });
    }
    return new BuildkitClient(stub, address);
  }

  private unary<Req, Res>(method: Unary<Req, Res>, request: Req, signal?: AbortSignal): Promise<Res> {
    return new Promise((resolve, reject) => {
      const call = method.call(this.stub, request, new grpc.Metadata(), {}, (err, res) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(toBuildkitError(err, this.address.display));
        else resolve(res as Res);
      });
      const onAbort = () => call.cancel();
      if (signal?.aborted) call.cancel();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  info(signal?: AbortSignal): Promise<moby_buildkit_v1_InfoResponse> {
    return this.unary(this.stub.Info, {}, signal);
  }

  listWorkers(signal?: AbortSignal): Promise<moby_buildkit_v1_ListWorkersResponse> {
    return this.unary(this.stub.ListWorkers, {}, signal);
  }

  solve(
    request: moby_buildkit_v1_SolveRequest,
    signal?: AbortSignal,
  ): Promise<moby_buildkit_v1_SolveResponse> {
    return this.unary(this.stub.Solve, request, signal);
  }

  /** The status stream of build `ref`: incremental vertex, status and log updates. */
  status(ref: string): grpc.ClientReadableStream<moby_buildkit_v1_StatusResponse> {
    return this.stub.Status({ Ref: ref });
  }

  /** The build cache's records (what `buildctl du` lists). */
  diskUsage(
    request: moby_buildkit_v1_DiskUsageRequest,
    signal?: AbortSignal,
  ): Promise<moby_buildkit_v1_DiskUsageResponse> {
    return this.unary(this.stub.DiskUsage, request, signal);
  }

  /**
   * Removes build cache records as `request` says; `onRemoved` hears of each record as the daemon
   * removes it. Resolves when the daemon is done.
   */
  prune(
    request: moby_buildkit_v1_PruneRequest,
    onRemoved: (record: moby_buildkit_v1_UsageRecord) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const call = this.stub.Prune(request);
      const onAbort = () => call.cancel();
      const settle = (err?: grpc.ServiceError) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(toBuildkitError(err, this.address.display));
        else resolve();
      };
      call.on('data', (record: moby_buildkit_v1_UsageRecord) => onRemoved(record));
      call.on('error', (err: grpc.ServiceError) => settle(err));
      call.on('end', () => settle());
      if (signal?.aborted) call.cancel();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Opens the session stream (on a connection of its own); `Session` wraps it. */
  openSession(metadata: StreamMetadata): SessionStream {
    const stream = new SessionStream(this.address.endpoint, metadata);
    this.sessions.add(stream);
    stream.once('close', () => this.sessions.delete(stream));
    return stream;
  }

  /** A client of another service served on the same connection (e.g. the gateway's LLBBridge). */
  serviceClient(name: string): grpc.Client {
    const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(name), name);
    return new Ctor(this.address.target, this.address.credentials, {
      channelOverride: this.stub.getChannel(),
    });
  }

  /** Closes the connection, and the session streams still open (each has a connection of its own). */
  close(): void {
    for (const stream of this.sessions) stream.cancel();
    this.stub.close();
  }
}

/** The channel's first connection attempt failed (rather than the deadline passing). */
class ConnectAttemptFailed extends Error {}

/** Resolves once `channel` is READY; rejects when an attempt fails or at `deadline`. */
function untilReady(
  channel: ReturnType<grpc.Client['getChannel']>,
  deadline: number,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('aborted'));
    signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    const check = () => {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) resolve();
      else if (
        state === grpc.connectivityState.TRANSIENT_FAILURE ||
        state === grpc.connectivityState.SHUTDOWN
      )
        reject(new ConnectAttemptFailed(`the channel is ${grpc.connectivityState[state]}`));
      else channel.watchConnectivityState(state, deadline, (err) => (err ? reject(err) : check()));
    };
    check();
  });
}

export function toBuildkitError(err: grpc.ServiceError, where: string): BuildkitError {
  if (err.code === grpc.status.CANCELLED)
    return new BuildkitError('cancelled', { cause: err, exitCode: 130 });
  if (err.code === grpc.status.UNAVAILABLE) {
    return new BuildkitError(`lost the connection to buildkitd at ${where}: ${err.details}`, {
      hint: 'check that buildkitd is still running (its log says why it stopped)',
      cause: err,
    });
  }
  // an HTTP/2 server that is not buildkitd (a proxy, another service) answers with a plain status
  const http = /Received HTTP status code (\d+)/.exec(err.details ?? '');
  if (http)
    return new BuildkitError(
      `${where} answered with HTTP status ${http[1]}: it does not serve buildkitd's API`,
      {
        hint: 'point BUILDKIT_HOST at buildkitd itself (its --addr), not at a proxy or another service',
        cause: err,
      },
    );
  return new BuildkitError(err.details || err.message, { cause: err });
}
