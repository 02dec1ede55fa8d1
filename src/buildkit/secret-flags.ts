/**
 * `--secret` flags: their parsing (buildx's syntax) and reading a secret's bytes from its file or
 * environment variable. The session's Secrets service (secrets.ts) serves them to the daemon.
 */
import { readFile } from 'node:fs/promises';
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
