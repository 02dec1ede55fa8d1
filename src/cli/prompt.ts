/**
 * Reading answers from the user: a visible line, a hidden line (no echo, for passwords and tokens) on
 * a terminal, or all of stdin (`--password-stdin`). Prompts go to the given stream (stderr), so stdout
 * keeps only the command's result.
 */
import { createInterface } from 'node:readline';
import { CogError } from '../errors.js';

export type PromptInput = NodeJS.ReadableStream & {
  readonly isTTY?: boolean;
  readonly isRaw?: boolean;
  setRawMode?: (mode: boolean) => unknown;
};

/** Whether we can ask on this input: a terminal that can turn echo off. */
export function isInteractive(input: PromptInput): boolean {
  return input.isTTY === true && typeof input.setRawMode === 'function';
}

function interrupted(): CogError {
  // no answer (Ctrl-C, or stdin ended): whatever was asked for is left undone
  return new CogError('interrupted', { hint: 'nothing was changed', exitCode: 130 });
}

/** Reads one visible line. */
export function readLine(input: PromptInput, output: NodeJS.WritableStream, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input, output, terminal: false });
    let answered = false;
    output.write(prompt);
    rl.once('line', (line) => {
      answered = true;
      rl.close();
      resolve(line);
    });
    rl.once('close', () => {
      if (!answered) reject(interrupted());
    });
    rl.once('SIGINT', () => {
      rl.close();
    });
  });
}

/** Reads one line with echo off (raw mode); Ctrl-C and Ctrl-D on an empty line abort. */
export function readHidden(
  input: PromptInput,
  output: NodeJS.WritableStream,
  prompt: string,
): Promise<string> {
  const setRaw = input.setRawMode?.bind(input);
  if (!setRaw) return Promise.reject(new CogError('cannot read a password: stdin is not a terminal'));
  output.write(prompt);
  return new Promise((resolve, reject) => {
    const wasRaw = input.isRaw === true;
    let value = '';
    const finish = (err?: Error) => {
      input.off('data', onData);
      setRaw(wasRaw);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(interrupted());
        if (ch === '\u0004') {
          if (value === '') return finish(interrupted());
          continue;
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch === '\u0015') value = '';
        else if (ch >= ' ') value += ch;
      }
    };
    setRaw(true);
    input.on('data', onData);
    input.resume();
  });
}

/** The most a password or token on stdin may be (registries refuse far shorter request headers). */
export const secretInputLimit = 64 * 1024;

/**
 * Reads all of stdin (e.g. `echo "$PASSWORD" | cog login --password-stdin`) as UTF-8 text, for `flag`:
 * input over `limit` bytes, bytes that are not UTF-8, and a stdin that cannot be read are errors that
 * name the flag.
 */
export async function readAll(
  input: NodeJS.ReadableStream,
  flag = 'stdin',
  limit = secretInputLimit,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of input) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      size += bytes.length;
      if (size > limit)
        throw new CogError(`${flag}: the input is longer than ${limit / 1024} KiB`, {
          hint: 'pipe in the password or token alone (e.g. `printenv TOKEN | cog login …`)',
        });
      chunks.push(bytes);
    }
  } catch (err) {
    if (err instanceof CogError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new CogError(`${flag}: cannot read stdin (${code ?? (err as Error).message})`, {
      hint:
        code === 'EISDIR'
          ? 'stdin is a directory; redirect a file or pipe the secret in'
          : 'pipe the secret in',
    });
  }
  const bytes = Buffer.concat(chunks);
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes))
    throw new CogError(`${flag}: the input is not UTF-8 text`, {
      hint: 'pipe in the password or token as UTF-8 text',
    });
  return text;
}
