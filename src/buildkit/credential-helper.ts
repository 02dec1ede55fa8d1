/**
 * Runs a docker credential helper (`docker-credential-<name> get|store|erase`) with its input on
 * stdin, under our own timeout (spawn's `timeout` keeps running when the program never started).
 * Resolves with what it said whatever its exit status; rejects only when it cannot run at all.
 *
 * The helper runs in its own process group, so that giving up on it ends the programs it started as
 * well (a script's `sleep`, an agent it waits on), not just the helper: they are killed together.
 */
import { spawn } from 'node:child_process';
import { CogError } from '../errors.js';

export interface HelperRun {
  readonly program: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  /** trimmed, at most 64 KiB each */
  readonly stdout: string;
  readonly stderr: string;
}

const outputLimit = 64 * 1024;

/** How long output may keep coming after the helper exited (from a program it left running). */
const exitGraceMs = 1_000;

/**
 * A group of its own gets no Ctrl-C from the terminal: if cog exits while a helper still runs (a second
 * Ctrl-C exits at once), its group goes with it. One 'exit' listener for all the helpers running.
 */
const killedAtExit = new Set<() => void>();
function killAllAtExit(): void {
  for (const kill of killedAtExit) kill();
}
function forget(kill: () => void): void {
  killedAtExit.delete(kill);
  if (killedAtExit.size === 0) process.off('exit', killAllAtExit);
}

export function execCredentialHelper(
  helper: string,
  action: 'get' | 'store' | 'erase',
  input: string,
  options: { readonly env?: NodeJS.ProcessEnv | undefined; readonly timeoutMs?: number | undefined } = {},
): Promise<HelperRun> {
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, [action], {
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      // its own process group (its pid is the group's id): see killGroup
      detached: true,
    });
    const timeoutMs = options.timeoutMs ?? 30_000;
    let timedOut = false;
    let settled = false;
    let exited = false;
    let afterExit: NodeJS.Timeout | undefined;
    /** SIGKILL to the helper's whole group: a hung helper's children would otherwise keep running */
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // no group (already gone): the helper alone, if still there
      }
    };
    const onProcessExit = () => {
      if (!exited) killGroup();
    };
    killedAtExit.add(onProcessExit);
    if (killedAtExit.size === 1) process.once('exit', killAllAtExit);
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(afterExit);
      forget(onProcessExit);
      resolve({ program, code, signal, timedOut, stdout: stdout.trim(), stderr: stderr.trim() });
    };
    // a helper is often a script: a program it started can hold the output pipes open after it was
    // killed or has exited, and 'close' would wait for that program too; so the pipes are let go
    const letGo = () => {
      child.stdout.destroy();
      child.stderr.destroy();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
      letGo();
      // killed, and its pipes let go: its exit, when it comes, must not keep cog running
      child.unref();
      finish(null, 'SIGKILL');
    }, timeoutMs);
    timer.unref();
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < outputLimit) stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < outputLimit) stderr += chunk;
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      settled = true;
      forget(onProcessExit);
      reject(
        err.code === 'ENOENT'
          ? new CogError(`credential helper ${program} is not installed (not found on PATH)`, {
              hint: `install ${program}, or remove "${helper}" from credsStore/credHelpers in config.json`,
            })
          : new CogError(`credential helper ${program} could not run: ${err.message}`, {
              hint: `check that \`${program} ${action}\` works, or remove it from config.json`,
            }),
      );
    });
    child.stdin.on('error', () => undefined); // a helper that exits without reading stdin
    child.stdin.end(input);
    child.on('exit', (code, signal) => {
      exited = true;
      afterExit = setTimeout(() => {
        letGo();
        finish(code, signal);
      }, exitGraceMs);
      afterExit.unref();
    });
    child.on('close', finish);
  });
}
