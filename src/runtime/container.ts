/**
 * Containers through BuildKit's gateway: a container is made of solved refs (the root filesystem and
 * any mounts), and processes run in it over an ExecProcess stream, with stdin, stdout and stderr as
 * Node streams, terminal resizes and signals. Nothing here needs a Docker daemon; the daemon releases
 * a container at the latest when the build that created it ends.
 */
import { PassThrough, type Readable, Writable } from 'node:stream';
import { newId } from '../buildkit/client.js';
import type { ExecStream, Gateway } from '../buildkit/gateway.js';
import { CogError } from '../errors.js';
import {
  type moby_buildkit_v1_frontend_ExecMessage,
  type moby_buildkit_v1_frontend_NewContainerRequest,
  type pb_Platform,
  pb_MountType,
  pb_NetMode,
} from '../gen/types.js';

export interface ContainerMount {
  /** where it appears; `/` is the root filesystem and must be given */
  readonly dest: string;
  /** a ref id from Gateway.solve */
  readonly ref: string;
  readonly readonly?: boolean;
  /** a path inside the ref to mount instead of its root */
  readonly selector?: string;
}

export interface ContainerOptions {
  readonly mounts: readonly ContainerMount[];
  /** `host` shares the daemon host's network (needs the network.host entitlement on the solve) */
  readonly network?: 'host' | 'sandbox' | 'none';
  readonly platform?: pb_Platform;
  readonly hostname?: string;
}

export interface ProcessOptions {
  readonly args: readonly string[];
  /** NAME=VALUE entries */
  readonly env: readonly string[];
  readonly cwd: string;
  readonly user?: string;
  /** a terminal: stdout and stderr arrive merged on stdout, and resize() works */
  readonly tty?: boolean;
  /** attach stdin (otherwise the process reads end-of-file at once) */
  readonly stdin?: boolean;
}

export interface ProcessExit {
  readonly code: number;
  /** the daemon's explanation when the process could not run or was killed */
  readonly error?: string;
}

const netModes = { host: pb_NetMode.HOST, sandbox: pb_NetMode.UNSET, none: pb_NetMode.NONE } as const;

/** The NewContainer request for `options`. */
export function containerRequest(
  id: string,
  options: ContainerOptions,
): moby_buildkit_v1_frontend_NewContainerRequest {
  if (!options.mounts.some((m) => m.dest === '/')) {
    throw new CogError('a container needs a root filesystem (a mount at /)');
  }
  return {
    ContainerID: id,
    // the root first: the daemon mounts the others on top of it
    Mounts: [...options.mounts]
      .sort((a, b) => (a.dest === '/' ? -1 : b.dest === '/' ? 1 : 0))
      .map((m) => ({
        dest: m.dest,
        resultID: m.ref,
        mountType: pb_MountType.BIND,
        ...(m.readonly ? { readonly: true } : {}),
        ...(m.selector ? { selector: m.selector } : {}),
      })),
    Network: netModes[options.network ?? 'sandbox'],
    ...(options.platform ? { platform: options.platform } : {}),
    ...(options.hostname ? { hostname: options.hostname } : {}),
  };
}

/** The first message of an ExecProcess stream: start `processId` in `containerId`. */
export function initMessage(
  containerId: string,
  processId: string,
  options: ProcessOptions,
): moby_buildkit_v1_frontend_ExecMessage {
  return {
    ProcessID: processId,
    Init: {
      ContainerID: containerId,
      Meta: {
        args: [...options.args],
        env: [...options.env],
        cwd: options.cwd,
        ...(options.user ? { user: options.user } : {}),
      },
      Fds: options.stdin ? [0, 1, 2] : [1, 2],
      Tty: options.tty === true,
    },
  };
}

/** A Node signal name as the daemon expects it: `SIGTERM` → `TERM`. */
export function signalName(signal: NodeJS.Signals | string): string {
  return signal.startsWith('SIG') ? signal.slice(3) : signal;
}

function endOnce(stream: PassThrough): void {
  if (!stream.writableEnded) stream.end();
}

/** A process in a gateway container. Read stdout and stderr (e.g. pipe them): like a child process, it stalls otherwise. */
export class ContainerProcess {
  /** fd 1 (with a tty: everything the terminal shows) */
  readonly stdout: Readable = new PassThrough();
  readonly stderr: Readable = new PassThrough();
  /** fd 0; ending it sends end-of-file. Undefined unless `stdin` was asked for. */
  readonly stdin: Writable | undefined;
  /** resolves when the process runs */
  readonly started: Promise<void>;
  /** resolves when the process exited and all its output was delivered */
  readonly exited: Promise<ProcessExit>;
  private stdinOpen: boolean;

  constructor(
    private readonly stream: ExecStream,
    private readonly id: string,
    options: ProcessOptions,
  ) {
    this.stdinOpen = options.stdin === true;
    this.stdin = options.stdin
      ? new Writable({
          write: (chunk: Buffer, _encoding, done) => {
            if (!this.stdinOpen) return done();
            this.send({ File: { Fd: 0, Data: chunk } }, done);
          },
          final: (done) => {
            this.endStdin();
            done();
          },
        })
      : undefined;
    let onStarted: () => void = () => {};
    let onStartFailed: (err: unknown) => void = () => {};
    this.started = new Promise<void>((resolve, reject) => {
      onStarted = resolve;
      onStartFailed = reject;
    });
    // a caller that only awaits `exited` must not see an unhandled rejection here
    this.started.catch(() => {});
    this.exited = new Promise<ProcessExit>((resolve, reject) => {
      let exit: ProcessExit | undefined;
      let settleTimer: NodeJS.Timeout | undefined;
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(settleTimer);
        endOnce(this.stdout as PassThrough);
        endOnce(this.stderr as PassThrough);
        // half-close: the daemon's side of the stream then ends too
        if (!stream.writableEnded) stream.end();
        resolve(exit ?? { code: 255, error: 'the process ended without an exit status' });
      };
      stream.on('data', (message: moby_buildkit_v1_frontend_ExecMessage) => {
        if (message.ProcessID !== id) return;
        if (message.Started) onStarted();
        else if (message.File)
          this.output(message.File.Fd ?? 0, message.File.Data, message.File.EOF === true);
        else if (message.Exit) {
          exit = {
            code: message.Exit.Code ?? 0,
            ...(message.Exit.Error?.message ? { error: message.Exit.Error.message } : {}),
          };
          onStarted();
          // Done follows once every pipe is closed, stdin included
          this.endStdin();
          settleTimer = setTimeout(finish, 2000);
        } else if (message.Done) finish();
      });
      stream.on('error', (err: Error) => {
        clearTimeout(settleTimer);
        const failure = new CogError(`the process stream broke: ${err.message}`, {
          hint: 'the build was cancelled, or the connection to buildkitd was lost',
          cause: err,
        });
        onStartFailed(failure);
        endOnce(this.stdout as PassThrough);
        endOnce(this.stderr as PassThrough);
        if (exit) resolve(exit);
        else reject(failure);
      });
      stream.on('end', finish);
    });
    this.exited.catch(() => {});
  }

  private output(fd: number, data: Uint8Array | undefined, eof: boolean): void {
    const target = (fd === 2 ? this.stderr : this.stdout) as PassThrough;
    // a slow reader holds the daemon back instead of filling memory
    if (data && data.length > 0 && !target.write(Buffer.from(data))) {
      this.stream.pause();
      target.once('drain', () => this.stream.resume());
    }
    if (eof) endOnce(target);
  }

  private send(message: Omit<moby_buildkit_v1_frontend_ExecMessage, 'ProcessID'>, done?: () => void): void {
    if (this.stream.destroyed || this.stream.writableEnded) {
      done?.();
      return;
    }
    this.stream.write({ ProcessID: this.id, ...message }, done ? () => done() : undefined);
  }

  /** Sends end-of-file on stdin (once). */
  endStdin(): void {
    if (!this.stdinOpen) return;
    this.stdinOpen = false;
    this.send({ File: { Fd: 0, EOF: true } });
  }

  /** Sends a signal, e.g. `SIGTERM` or `INT`. */
  signal(signal: NodeJS.Signals | string): void {
    this.send({ Signal: { Name: signalName(signal) } });
  }

  resize(rows: number, cols: number): void {
    this.send({ Resize: { Rows: rows, Cols: cols } });
  }
}

export class GatewayContainer {
  private released = false;

  private constructor(
    private readonly gw: Gateway,
    readonly id: string,
  ) {}

  /** Creates a container; the id is ours to choose, so a retry cannot clash with a leftover. */
  static async create(gw: Gateway, options: ContainerOptions): Promise<GatewayContainer> {
    const id = newId(); // runc accepts letters and digits only
    await gw.newContainer(containerRequest(id, options));
    return new GatewayContainer(gw, id);
  }

  /** Starts a process; the first one started is the container's init process. */
  exec(options: ProcessOptions): ContainerProcess {
    const processId = newId();
    const stream = this.gw.execProcess();
    const process = new ContainerProcess(stream, processId, options);
    stream.write(initMessage(this.id, processId, options));
    return process;
  }

  /** Kills whatever still runs and frees the mounts; safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.gw.releaseContainer(this.id);
  }
}
