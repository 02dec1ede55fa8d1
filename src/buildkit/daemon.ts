/**
 * Finding a buildkitd for a command: BUILDKIT_HOST when set; else a daemon at the default socket; else a
 * private buildkitd started from PATH for the duration of the command (rootless through rootlesskit
 * when not root) and stopped afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { access, constants, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { BuildkitClient, type TlsOptions } from './client.js';
import { guardDaemon, processEnded, waitSync } from './daemon-guard.js';
import { daemonLogExcerpt, lockedRoot } from './daemon-log.js';
import { BuildkitError } from './errors.js';
import { extraCaCertificates } from '../extra-ca.js';
import { userDir, userDirSetting } from '../user-dirs.js';

export interface BuildkitConnection {
  readonly client: BuildkitClient;
  /** true when this command started its own buildkitd */
  readonly privateDaemon: boolean;
  /** closes the client and stops a private daemon */
  close(): Promise<void>;
}

export interface ConnectOptions {
  readonly env: NodeJS.ProcessEnv;
  /** where notices about a private daemon go */
  readonly stderr: NodeJS.WritableStream;
  readonly tls?: TlsOptions;
  /** how long to wait for an explicit BUILDKIT_HOST (default 5 s) */
  readonly timeoutMs?: number;
  readonly uid?: number;
  /** gives up starting a private daemon (which is then stopped and its files removed) */
  readonly signal?: AbortSignal;
}

const installHint =
  'install BuildKit (e.g. `go install github.com/moby/buildkit/cmd/buildkitd@v0.32.2` plus runc, or a release ' +
  'tarball from github.com/moby/buildkit/releases) so `buildkitd` is on PATH, or set BUILDKIT_HOST to a running daemon';

/** The socket a daemon started with default flags listens on, like buildctl's default address. */
export function defaultBuildkitHosts(env: NodeJS.ProcessEnv, uid: number): string[] {
  const hosts: string[] = [];
  if (uid !== 0 && env.XDG_RUNTIME_DIR) hosts.push(`unix://${env.XDG_RUNTIME_DIR}/buildkit/buildkitd.sock`);
  hosts.push('unix:///run/buildkit/buildkitd.sock');
  return hosts;
}

/** Looks a program up on a PATH string; undefined when absent. */
export async function findOnPath(program: string, path: string | undefined): Promise<string | undefined> {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export async function connectBuildkit(options: ConnectOptions): Promise<BuildkitConnection> {
  const { env } = options;
  const explicit = env.BUILDKIT_HOST?.trim();
  if (explicit) {
    const tls = options.tls ? withExtraCa(options.tls, env) : undefined;
    const client = await BuildkitClient.connect(explicit, {
      ...(tls ? { tls } : {}),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return external(client);
  }
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const defaults = defaultBuildkitHosts(env, uid);
  for (const host of defaults) {
    if (!existsSync(host.slice('unix://'.length))) continue;
    try {
      return external(await BuildkitClient.connect(host, { timeoutMs: 2000 }));
    } catch {
      // a stale socket: try the next, then start our own
    }
  }
  return startPrivateDaemon(options, uid, defaults);
}

/**
 * TLS options whose server check trusts what the registry client trusts: a client certificate without
 * --tlscacert checks buildkitd's against Node's roots plus SSL_CERT_FILE's and NODE_EXTRA_CA_CERTS'
 * certificates (which bin/cog keeps out of Node's own roots, see extra-ca.ts). Unchanged when a CA is
 * given, none is configured, or TLS is off.
 */
function withExtraCa(tls: TlsOptions, env: NodeJS.ProcessEnv): TlsOptions {
  if (tls.caCert || !tls.cert) return tls;
  const extra = extraCaCertificates(env);
  if (!extra || extra.length === 0) return tls;
  return { ...tls, caCert: Buffer.from([...rootCertificates, ...extra].join('\n')) };
}

function external(client: BuildkitClient): BuildkitConnection {
  return {
    client,
    privateDaemon: false,
    close: () => {
      client.close();
      return Promise.resolve();
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Claims the persistent daemon root (so builds share a cache), or undefined when another cog holds it. */
async function claimRoot(root: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    await mkdir(root, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    const setting = userDirSetting(env, 'state');
    throw new BuildkitError(
      `cannot make buildkitd's state directory ${root}${setting ? ` (in ${setting})` : ''}: ${code}`,
      {
        hint: `${setting ? 'point XDG_STATE_HOME at a directory you can write' : 'make that path a directory you can write (a file or a link to nothing may be in the way)'}, or set BUILDKIT_HOST to a running buildkitd`,
        cause: err,
      },
    );
  }
  const pidFile = join(root, 'cog-ts.pid');
  try {
    const holder = Number((await readFile(pidFile, 'utf8')).trim());
    if (holder && holder !== process.pid && isAlive(holder)) return undefined;
    await rm(pidFile, { force: true });
  } catch {
    // no pid file
  }
  try {
    const fd = openSync(pidFile, 'wx');
    closeSync(fd);
    await writeFile(pidFile, `${process.pid}\n`);
    return pidFile;
  } catch {
    return undefined; // lost a race with another cog
  }
}

async function startPrivateDaemon(
  options: ConnectOptions,
  uid: number,
  triedHosts: readonly string[],
): Promise<BuildkitConnection> {
  const { env } = options;
  const buildkitd = await findOnPath('buildkitd', env.PATH);
  if (!buildkitd) {
    throw new BuildkitError(
      `no buildkitd to build with: BUILDKIT_HOST is not set, nothing answers at ${triedHosts.join(' or ')}, and buildkitd is not on PATH`,
      { hint: installHint },
    );
  }
  let command = buildkitd;
  const args: string[] = [];
  if (uid !== 0) {
    const rootlesskit = await findOnPath('rootlesskit', env.PATH);
    if (!rootlesskit) {
      throw new BuildkitError(
        'found buildkitd on PATH, but starting it without root needs rootlesskit, which is not on PATH',
        { hint: `install rootlesskit (e.g. \`apt install rootlesskit uidmap\`), or ${installHint}` },
      );
    }
    command = rootlesskit;
    args.push(buildkitd);
  }
  const persistentRoot = join(
    userDir(env, 'state'),
    'cog-ts',
    uid === 0 ? 'buildkitd' : 'buildkitd-rootless',
  );
  const pidFile = await claimRoot(persistentRoot, env);
  const runDir = await mkdtemp(join(env.TMPDIR || tmpdir(), 'cog-buildkitd-'));
  const root = pidFile ? persistentRoot : join(runDir, 'root');
  const socket = join(runDir, 'buildkitd.sock');
  const logFile = join(runDir, 'buildkitd.log');
  args.push('--addr', `unix://${socket}`, '--root', root);
  if (env.COG_BUILDKITD_CONFIG) args.push('--config', env.COG_BUILDKITD_CONFIG);
  if (uid !== 0) args.push('--oci-worker-no-process-sandbox');

  let stopped: Promise<void> | undefined;
  const cleanup = () =>
    (stopped ??= (async () => {
      await stopChild(child);
      if (pidFile) await rm(pidFile, { force: true });
      await rm(runDir, { recursive: true, force: true });
    })());
  // no daemon outlives the command: not after a signal no handler takes, nor after process.exit. Set
  // before the spawn: a signal that comes while the process forks is handled once the spawn returned
  // (no await comes between: \`child\` is set by then), not by the default action that left it running
  const unguard = guardDaemon({
    stop: cleanup,
    stopNow: () => {
      stopChildNow(child);
      if (pidFile) rmSync(pidFile, { force: true });
      rmSync(runDir, { recursive: true, force: true });
    },
    notice: (signal) => options.stderr.write(`cog: ${signal}: stopping the private buildkitd\n`),
  });
  const log = openSync(logFile, 'a');
  const child = spawn(command, args, { stdio: ['ignore', log, log], env });
  closeSync(log);
  options.stderr.write(
    `cog: no BUILDKIT_HOST and no buildkitd at ${triedHosts.join(' or ')}; started a private ${uid === 0 ? '' : 'rootless '}buildkitd (${buildkitd}, state in ${root}) for this command\n`,
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));
  try {
    const client = await waitForDaemon(`unix://${socket}`, exited, spawnFailed, logFile, options.signal);
    return {
      client,
      privateDaemon: true,
      close: async () => {
        client.close();
        await cleanup();
        unguard();
      },
    };
  } catch (err) {
    await cleanup();
    unguard();
    throw err;
  }
}

const startTimeoutMs = 30_000;

async function waitForDaemon(
  host: string,
  exited: Promise<number | null>,
  spawnFailed: Promise<Error>,
  logFile: string,
  signal: AbortSignal | undefined,
): Promise<BuildkitClient> {
  const deadline = Date.now() + startTimeoutMs;
  let failure: string | undefined;
  void exited.then((code) => (failure = `it exited with code ${code}`));
  void spawnFailed.then((err) => (failure = `it could not be started: ${err.message}`));
  while (Date.now() < deadline && failure === undefined) {
    if (signal?.aborted)
      throw new BuildkitError(
        'the private buildkitd was stopped while it started: the command was interrupted',
      );
    if (existsSync(host.slice('unix://'.length))) {
      try {
        return await BuildkitClient.connect(host, { timeoutMs: 1000 });
      } catch {
        // not serving yet
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  let log = '';
  try {
    log = readFileSync(logFile, 'utf8');
  } catch {
    // no log
  }
  const excerpt = daemonLogExcerpt(log);
  const locked = lockedRoot(log);
  throw new BuildkitError(
    `the private buildkitd did not come up: ${failure ?? `no answer within ${startTimeoutMs / 1000}s`}${excerpt ? `\n${excerpt}` : ''}`,
    {
      hint: locked
        ? `another buildkitd uses ${locked} (one an interrupted cog left running?): stop it (\`ps -eo pid,cmd | grep 'buildkitd.*--root ${locked}'\`), or set BUILDKIT_HOST to a running daemon`
        : `check that runc is installed and this user may run containers; or set BUILDKIT_HOST. ${installHint}`,
    },
  );
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(timer);
}

/** stopChild for an 'exit' listener: SIGTERM, a few seconds to stop, then SIGKILL. */
function stopChildNow(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  child.kill('SIGTERM');
  if (!waitSync(() => processEnded(pid), 5_000)) child.kill('SIGKILL');
}
