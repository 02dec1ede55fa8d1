/**
 * `--secret` flags: their parsing (buildx's syntax) and reading a secret's bytes from its file or
 * environment variable. The session's Secrets service (secrets.ts) serves them to the daemon.
 */
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { CogError } from '../errors.js';

export type SecretSource = { readonly file: string } | { readonly env: string };

/** Parses a `--secret` value like buildx: `id=NAME,src=PATH` or `id=NAME,env=VAR` (type=file|env). */
export function parseSecretFlag(value: string): [string, SecretSource] {
  const fields = new Map(
    value.split(',').map((part) => {
      const eq = part.indexOf('=');
      return eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
    }),
  );
  const id = fields.get('id');
  const src = fields.get('src') ?? fields.get('source');
  const env = fields.get('env');
  if (!id)
    throw new CogError(`--secret "${value}" has no id`, {
      hint: 'write it as id=NAME,src=PATH or id=NAME,env=VAR',
    });
  if (src && env) throw new CogError(`--secret ${id}: give src or env, not both`);
  if (fields.get('type') === 'env' || env) return [id, { env: env ?? src ?? id }];
  return [id, { file: src ?? id }];
}

/** A secret's bytes, from its file or environment variable. */
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
    throw new Error(
      `secret ${id}: cannot read ${source.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/**
 * Refuses a `--secret` whose file cannot be read, whether a step uses the secret or not (as buildx
 * does): a misspelt src= would otherwise pass unnoticed. A variable (env=) is looked up only when a
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
      const code = (err as NodeJS.ErrnoException).code;
      why =
        code === 'ENOENT' || code === 'ENOTDIR'
          ? 'no such file'
          : code === 'EACCES'
            ? 'not readable'
            : (err as Error).message;
    }
    if (why)
      throw new CogError(`--secret id=${id},src=${source.file}: ${why}`, {
        hint: 'give src= the path of a readable file (relative to the current directory), or take the secret from a variable with env=VAR',
      });
  }
}
