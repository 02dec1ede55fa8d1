/**
 * The session's Secrets service: build secrets by id, read from a file or an environment variable when
 * the daemon asks. Values never enter the LLB, the image or any message we print.
 */
import * as grpc from '@grpc/grpc-js';
import type { moby_buildkit_secrets_v1_GetSecretRequest } from '../gen/types.js';
import { type SecretSource, readSecret } from './secret-flags.js';
import type { SessionService } from './session.js';

/** The Secrets service for the session: each secret by id, read when the daemon asks. */
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
