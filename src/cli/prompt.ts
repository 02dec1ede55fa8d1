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
  return new CogError('interrupted', { hint: 'nothing was stored', exitCode: 130 });
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

/** Reads all of stdin (e.g. `echo "$PASSWORD" | cog login --password-stdin`). */
export async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}
