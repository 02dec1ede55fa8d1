/**
 * `--secret` flags: their parsing (buildx's syntax) and reading a secret's bytes from its file or
 * environment variable. The session's Secrets service (secrets.ts) serves them to the daemon.
 */
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { CogError } from '../errors.js';

/** `implied`: the flag named neither src= nor env=, and no variable of the id's name was set */
export type SecretSource = { readonly file: string; readonly implied?: true } | { readonly env: string };

/** The keys of a `--secret` value, as buildx has them. */
const secretKeys: ReadonlySet<string> = new Set(['id', 'src', 'source', 'env', 'type']);

/**
 * Parses a `--secret` value like buildx: `id=NAME,src=PATH` or `id=NAME,env=VAR` (type=file|env);
 * `src=PATH` without an id takes the file's base name as the id. With
 * neither src= nor env= (nor a type), the secret is the variable NAME when `env` has it set, else the
 * file NAME, as buildx's secrets provider decides.
 */
export function parseSecretFlag(value: string, env: NodeJS.ProcessEnv): [string, SecretSource] {
  // buildx refuses what it does not know: a misspelt src= would otherwise fall back to the id's file
  const refuse = (problem: string) =>
    new CogError(`--secret "${value}": ${problem}`, {
      hint: 'the keys are id, src (or source), env and type (file or env): id=NAME,src=PATH or id=NAME,env=VAR',
    });
  const fields = new Map(
    value.split(',').map((part) => {
      const eq = part.indexOf('=');
      if (eq < 0) throw refuse(`${JSON.stringify(part)} is not KEY=VALUE`);
      const key = part.slice(0, eq).trim().toLowerCase();
      if (!secretKeys.has(key)) throw refuse(`unknown key ${JSON.stringify(key)}`);
      return [key, part.slice(eq + 1)];
    }),
  );
  const src = fields.get('src') ?? fields.get('source');
  const variable = fields.get('env');
  const type = fields.get('type');
  if (type !== undefined && type !== 'file' && type !== 'env')
    throw new CogError(`--secret "${value}": type ${JSON.stringify(type)} is not file or env`, {
      hint: 'type=file reads src (a file), type=env reads env (a variable); leave type out to have it guessed',
    });
  // without id=, a file's secret is named after the file (as buildx does): src=/run/token.txt -> token.txt
  const id = fields.get('id') || (src && type !== 'env' ? basename(src) : undefined);
  if (!id)
    throw new CogError(`--secret "${value}" has no id`, {
      hint: 'write it as id=NAME,src=PATH, src=PATH (the id is the file name), id=NAME,env=VAR or id=NAME',
    });
  if (src && variable) throw new CogError(`--secret ${id}: give src or env, not both`);
  if (type === 'env' || variable) return [id, { env: variable ?? src ?? id }];
  if (src || type === 'file') return [id, { file: src ?? id }];
  return [id, env[id] !== undefined ? { env: id } : { file: id, implied: true }];
}

/**
 * A secret's bytes, from its file or environment variable.
 * @throws Error `secret ID: environment variable VAR is not set` or `secret ID: cannot read the file
 * PATH: WHY` (the session passes this on to buildkitd, and explainMissingSecret reads it back)
 */
export async function readSecret(
  id: string,
  source: SecretSource,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Uint8Array> {
  if ('env' in source) {
    const value = env[source.env];
    if (value === undefined) throw new Error(`secret ${id}: environment variable ${source.env} is not set`);
    return Buffer.from(value);
  }
  try {
    return await readFile(source.file);
  } catch (err) {
    throw new Error(`secret ${id}: cannot read the file ${source.file}: ${fileProblem(err)}`);
  }
}

/** What is wrong with a secret's file, from the error reading it. */
function fileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR'
    ? 'no such file'
    : code === 'EACCES'
      ? 'not readable'
      : code === 'EISDIR'
        ? 'a directory, not a file'
        : (err as Error).message;
}

/**
 * Refuses a `--secret` whose file cannot be read, whether a step uses the secret or not (as buildx
 * does): a misspelt src= would otherwise pass unnoticed; so is `id=NAME` alone when neither a variable
 * nor a file NAME is there. A variable (env=) is looked up only when a
 * step uses it. Files are checked, not read: their content is read when the daemon asks.
 * @throws CogError naming the flag and the file
 */
export async function checkSecretFiles(secrets: Readonly<Record<string, SecretSource>>): Promise<void> {
  for (const [id, source] of Object.entries(secrets)) {
    if (!('file' in source)) continue;
    let why: string | undefined;
    try {
      if ((await stat(source.file)).isDirectory()) why = 'a directory, not a file';
      else await access(source.file, constants.R_OK);
    } catch (err) {
      why = fileProblem(err);
    }
    if (why && source.implied)
      throw new CogError(
        `--secret id=${id}: no variable ${id} is set, and the file ${source.file} cannot be read (${why})`,
        {
          hint: `with neither src= nor env=, the secret is the variable ${id} if it is set, else the file ${id}: set the variable, or write id=${id},src=FILE or id=${id},env=VAR`,
        },
      );
    if (why)
      throw new CogError(`--secret id=${id},src=${source.file}: ${why}`, {
        hint: 'give src= the path of a readable file (relative to the current directory), or take the secret from a variable with env=VAR',
      });
  }
}
