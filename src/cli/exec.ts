/**
 * `cog exec CMD [ARGS…]`: a command in the model's environment (the project built, mounted at /src),
 * in a BuildKit gateway container. stdin is passed through; on a terminal the command gets a TTY (raw
 * mode, resizes follow the window). The command's exit code is cog's exit code.
 *
 * -p/--publish: containers share the daemon host's network, so a port the command listens on is
 * already reachable there; the flag is accepted (and checked) for upstream compatibility. With a remote
 * daemon (tcp://) the port opens on the daemon's host; nothing forwards it here.
 */
import type { ReadStream, WriteStream } from 'node:tty';
import type { TlsFlags } from '../buildkit/tls.js';
import { CogError } from '../errors.js';
import type { ContainerProcess } from '../runtime/container.js';
import type { CommandIo } from './debug-solve.js';
import { processEnv, withModelContainer } from './model-container.js';
import { parseEnv } from './predict.js';

export interface ExecArgs {
  readonly command: readonly string[];
  readonly publish: readonly string[];
  readonly env: readonly string[];
  readonly file: string;
  /** --secret for the project's build (build.run steps that mount one) */
  readonly secrets?: readonly string[];
  readonly progress: string | undefined;
  readonly tls?: TlsFlags;
  /** --use-cuda-base-image for the project's build, as `cog build` takes it; undefined is auto */
  readonly useCudaBaseImage?: string | undefined;
  /** --use-cog-base-image for the project's build, as `cog build` takes it; undefined is auto */
  readonly useCogBaseImage?: boolean | undefined;
  /** --gpus: refused unless none (see withModelContainer) */
  readonly gpus?: string | undefined;
}

/**
 * Splits the arguments after `exec` into cog's options and the command: the command starts at the
 * first argument that is not an option of cog's (or after `--`), and everything from there on is the
 * command's, options included. `valueOptions`: the names (long, or a letter) of cog's options that take
 * a value, which is the next argument unless written `--name=value`.
 */
export function splitExecArgv(
  argv: readonly string[],
  valueOptions: readonly string[],
): { options: string[]; command: string[] } {
  const takesValue = new Set(valueOptions.map((name) => (name.length === 1 ? `-${name}` : `--${name}`)));
  const options: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') return { options, command: argv.slice(i + 1) };
    if (!arg.startsWith('-') || arg === '-') return { options, command: argv.slice(i) };
    options.push(arg);
    if (takesValue.has(arg) && i + 1 < argv.length) options.push(argv[++i] as string);
  }
  return { options, command: [] };
}

/** The command exited non-zero: cog exits with its code and says nothing more. */
export class ProcessExitError extends CogError {
  constructor(code: number) {
    super(`the command exited with code ${code}`, { exitCode: code });
  }
}

export interface Published {
  readonly host: string;
  readonly port: number;
}

/**
 * -p PORT, HOST:PORT or [V6]:PORT (the container port is the host port, as upstream). A number for
 * HOST is docker's HOSTPORT:CONTAINERPORT: the same port twice is that port; two differ, and the
 * container, which shares the host's network, cannot be reached on a port it does not listen on.
 */
export function parsePublish(value: string): Published {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]:|([^:[\]]+):)?(\d+)$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new CogError(`-p "${value}" is not PORT, HOST:PORT or [IPV6]:PORT`, { hint: 'e.g. -p 8888' });
  }
  const host = match[2];
  if (host !== undefined && /^\d+$/.test(host)) {
    if (Number(host) === port) return { host: '127.0.0.1', port };
    throw new CogError(
      `-p "${value}": ports cannot be remapped (host port ${host} to container port ${port}): the container shares the host's network, so it is reached on the port it listens on`,
      {
        hint: `use the same port on both sides: -p ${port} (or -p ADDRESS:${port} with an address of this host)`,
      },
    );
  }
  return { host: match[1] ?? host ?? '127.0.0.1', port };
}

export function publishNote(published: readonly Published[], buildkitHost: string | undefined): string {
  const ports = published.map((p) => p.port).join(', ');
  const where = buildkitHost?.startsWith('tcp://')
    ? `on the host of buildkitd (${buildkitHost}); nothing forwards them here`
    : 'on this host';
  return `cog: the container shares the daemon host's network: port(s) ${ports} are reachable ${where}\n`;
}

interface Terminal {
  readonly stdin: ReadStream;
  readonly stdout: WriteStream;
}

function terminalOf(io: CommandIo): Terminal | undefined {
  const stdin = io.stdin as Partial<ReadStream>;
  const stdout = io.stdout as Partial<WriteStream>;
  if (stdin.isTTY && stdout.isTTY && typeof stdin.setRawMode === 'function') {
    return { stdin: io.stdin as ReadStream, stdout: io.stdout as WriteStream };
  }
  return undefined;
}

/** Wires the process to our stdin/stdout/stderr (and the terminal); returns the undo. */
function attach(process: ContainerProcess, io: CommandIo, terminal: Terminal | undefined): () => void {
  process.stdout.pipe(io.stdout, { end: false });
  process.stderr.pipe(io.stderr, { end: false });
  const stdin = process.stdin;
  if (stdin) io.stdin.pipe(stdin);
  const onResize = () => {
    if (terminal) process.resize(terminal.stdout.rows, terminal.stdout.columns);
  };
  if (terminal) {
    terminal.stdin.setRawMode(true);
    terminal.stdout.on('resize', onResize);
    process.started.then(onResize, () => {});
  }
  return () => {
    if (stdin) io.stdin.unpipe(stdin);
    io.stdin.pause();
    if (terminal) {
      terminal.stdout.off('resize', onResize);
      terminal.stdin.setRawMode(false);
    }
  };
}

export async function execCommand(args: ExecArgs, io: CommandIo, cwd = process.cwd()): Promise<void> {
  if (args.command.length === 0) {
    throw new CogError('name a command to run', { hint: 'e.g. cog exec python -c "import torch"' });
  }
  const env = parseEnv(args.env, io.env);
  const published = args.publish.map(parsePublish);
  const terminal = terminalOf(io);
  const exit = await withModelContainer(
    io,
    // a predictor the schema reader refuses must not keep anyone from debugging in its environment
    {
      image: undefined,
      file: args.file,
      secrets: args.secrets ?? [],
      progress: args.progress,
      tls: args.tls,
      schemaFailure: 'warn',
      useCudaBaseImage: args.useCudaBaseImage,
      useCogBaseImage: args.useCogBaseImage,
      gpus: args.gpus,
      command: 'cog exec',
    },
    cwd,
    async ({ container, config, cwd: workdir, onInterrupt }) => {
      const process = container.exec({
        args: [...(config.Entrypoint ?? []), ...args.command],
        env: processEnv(config.Env, {
          LOG_FORMAT: 'console',
          ...(terminal && io.env.TERM ? { TERM: io.env.TERM } : {}),
          ...env,
        }),
        cwd: workdir,
        ...(config.User ? { user: config.User } : {}),
        tty: terminal !== undefined,
        stdin: true,
      });
      // the signal cog gets goes to the command, as docker run's signal proxy does (on a terminal,
      // Ctrl-C is a keystroke the TTY sends); cog then exits with the command's status
      onInterrupt((signal) => process.signal(signal), 'passing it on to the command');
      const detach = attach(process, io, terminal);
      try {
        await process.started;
        if (published.length > 0) io.stderr.write(publishNote(published, io.env.BUILDKIT_HOST));
        return await process.exited;
      } finally {
        detach();
      }
    },
  );
  if (exit.code !== 0) {
    if (exit.error && !/exit code/i.test(exit.error)) io.stderr.write(`cog: ${exit.error}\n`);
    throw new ProcessExitError(exit.code);
  }
}
