/**
 * `cog serve`: the model's HTTP API on a local port, without Docker. The Cog server runs in a BuildKit
 * gateway container that shares the daemon host's network, so it binds the port on that host directly
 * (there is no port mapping: --host is the address the server binds). Ctrl-C stops the server, releases
 * the container and ends the build; like upstream, that is a clean exit.
 *
 * With a remote daemon (BUILDKIT_HOST=tcp://…) the port opens on the daemon's host, not this one.
 */
import { wantsColor } from './color.js';
import { isIP } from 'node:net';
import type { TlsFlags } from '../buildkit/tls.js';
import { CogError } from '../errors.js';
import type { CommandIo } from './debug-solve.js';
import { processEnv, withModelContainer } from './model-container.js';
import { checkImageArgument } from './prepare-build.js';
import { healthCheckUrl, launchedServerArgs } from '../runtime/worker-sockets.js';

export interface ServeArgs {
  readonly image: string | undefined;
  readonly port: number;
  readonly host: string;
  readonly uploadUrl: string | undefined;
  readonly file: string;
  /** --secret for the project's build (build.run steps that mount one); not with IMAGE */
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

/** The server's command line after the image's entrypoint (tini). */
export function serverArgs(args: Pick<ServeArgs, 'host' | 'uploadUrl'>): string[] {
  return [
    'python',
    '--check-hash-based-pycs',
    'never',
    '-m',
    'cog.server.http',
    '--host',
    args.host,
    ...(args.uploadUrl ? ['--upload-url', args.uploadUrl] : []),
  ];
}

export function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CogError(Number.isNaN(port) ? '--port needs a number' : `--port ${port} is not a TCP port`, {
      hint: 'give a number from 1 to 65535, e.g. -p 8393',
    });
  }
  return port;
}

/**
 * `--host`: the IPv4 address the server binds (`localhost` is 127.0.0.1). The Cog server (coglet) reads
 * `HOST:PORT` as a socket address: a host name or an IPv6 address made it exit with "invalid socket
 * address syntax" after the container had started.
 */
export function checkHost(host: string): string {
  if (host === 'localhost') return '127.0.0.1';
  if (isIP(host) === 4) return host;
  throw new CogError(`--host ${JSON.stringify(host)} is not an IPv4 address to bind`, {
    hint: 'the Cog server binds IPv4 addresses: e.g. --host 127.0.0.1 (this host only) or --host 0.0.0.0 (every interface)',
  });
}

/** `--upload-url`: an http(s) URL the server PUTs file outputs to. */
export function checkUploadUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const protocol = URL.canParse(url) ? new URL(url).protocol : undefined;
  if (protocol === 'http:' || protocol === 'https:') return url;
  throw new CogError(`--upload-url ${JSON.stringify(url)} is not an http or https URL`, {
    hint: 'e.g. --upload-url https://uploads.example/put/ (file outputs are PUT there)',
  });
}

/** A note for daemons elsewhere: the port opens on their host. */
export function remoteDaemonNote(buildkitHost: string | undefined, port: number): string | undefined {
  if (!buildkitHost?.startsWith('tcp://')) return undefined;
  return `cog: note: buildkitd at ${buildkitHost} is remote; port ${port} opens on its host, not here\n`;
}

/** How long the server gets to stop after SIGTERM before its container is released anyway. */
const stopTimeoutMs = 10_000;

export async function serve(args: ServeArgs, io: CommandIo, cwd = process.cwd()): Promise<void> {
  const port = checkPort(args.port);
  const host = checkHost(args.host);
  checkUploadUrl(args.uploadUrl);
  checkImageArgument(args.image, 'cog serve takes an image name, or none');
  const note = remoteDaemonNote(io.env.BUILDKIT_HOST, port);
  const exit = await withModelContainer(
    io,
    {
      image: args.image,
      file: args.file,
      secrets: args.secrets ?? [],
      progress: args.progress,
      tls: args.tls,
      useCudaBaseImage: args.useCudaBaseImage,
      useCogBaseImage: args.useCogBaseImage,
      gpus: args.gpus,
      command: 'cog serve',
      servesPredictor: true,
    },
    cwd,
    async ({ container, config, cwd: workdir, onInterrupt }) => {
      const server = container.exec({
        // through a launcher that keeps it clear of other Cog servers' worker sockets on this network
        args: [
          ...(config.Entrypoint ?? []),
          ...launchedServerArgs(serverArgs({ ...args, host }), healthCheckUrl(host, port)),
        ],
        env: processEnv(config.Env, {
          PORT: String(port),
          LOG_FORMAT: 'console',
          ...(io.env.RUST_LOG ? { RUST_LOG: io.env.RUST_LOG } : {}),
          // the server's log colours, as cog's own: none into a file or pipe, or with NO_COLOR/--no-color
          ...(wantsColor(io.env, io.stdout, io.stderr) ? {} : { NO_COLOR: '1' }),
        }),
        cwd: workdir,
        ...(config.User ? { user: config.User } : {}),
      });
      server.stdout.pipe(io.stdout, { end: false });
      server.stderr.pipe(io.stderr, { end: false });
      let stopping = false;
      onInterrupt(() => {
        stopping = true;
        io.stderr.write('cog: stopping the server\n');
        server.signal('SIGTERM');
        setTimeout(() => {
          container.release().catch(() => {});
        }, stopTimeoutMs).unref();
      });
      await server.started;
      io.stderr.write(`Serving at http://${host}:${port} (Ctrl-C stops it)\n`);
      if (note) io.stderr.write(note);
      const exited = await server.exited;
      return { ...exited, stopping };
    },
  );
  if (exit.stopping) return;
  // stopped from inside, e.g. POST /shutdown: a clean end, as Ctrl-C's
  if (exit.code === 0 && !exit.error) {
    io.stderr.write('cog: the model server stopped\n');
    return;
  }
  throw new CogError(
    `the model server exited with code ${exit.code}${exit.error ? ` (${exit.error})` : ''}`,
    {
      hint: 'its output above says why (e.g. the port is taken: try another -p)',
      exitCode: exit.code === 0 ? 1 : exit.code,
    },
  );
}
