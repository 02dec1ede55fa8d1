/**
 * Runs a docker credential helper (`docker-credential-<name> get|store|erase`) with its input on
 * stdin, under our own timeout (spawn's `timeout` keeps running when the program never started).
 * Resolves with what it said whatever its exit status; rejects only when it cannot run at all.
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
    });
    const timeoutMs = options.timeoutMs ?? 30_000;
    let timedOut = false;
    let settled = false;
    let afterExit: NodeJS.Timeout | undefined;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(afterExit);
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
      child.kill('SIGKILL');
      letGo();
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
      afterExit = setTimeout(() => {
        letGo();
        finish(code, signal);
      }, exitGraceMs);
      afterExit.unref();
    });
    child.on('close', finish);
  });
}
