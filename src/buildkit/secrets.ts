/**
 * The session's Secrets service: build secrets by id, read from a file or an environment variable when
 * the daemon asks. Values never enter the LLB, the image or any message we print.
 */
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { moby_buildkit_secrets_v1_GetSecretRequest } from '../gen/types.js';
import { CogError } from '../errors.js';
import type { SessionService } from './session.js';

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

export function secretsService(
  secrets: Readonly<Record<string, SecretSource>>,
  env: NodeJS.ProcessEnv = process.env,
): SessionService {
  return {
    name: 'moby.buildkit.secrets.v1.Secrets',
    implementation: {
      GetSecret: (
        call: grpc.ServerUnaryCall<moby_buildkit_secrets_v1_GetSecretRequest, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        const id = call.request.ID ?? '';
        const source = secrets[id];
        if (!source) {
          callback({ code: grpc.status.NOT_FOUND, details: `secret ${id} not found` });
          return;
        }
        readSecret(id, source, env).then(
          (data) => callback(null, { data }),
          (err: Error) => callback({ code: grpc.status.NOT_FOUND, details: err.message }),
        );
      },
    },
  };
}
