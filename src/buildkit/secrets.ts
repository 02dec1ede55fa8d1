/**
 * The session's Secrets service: build secrets by id, read from a file or an environment variable when
 * the daemon asks. Values never enter the LLB, the image or any message we print.
 */
import * as grpc from '@grpc/grpc-js';
import { CogError } from '../errors.js';
import type { moby_buildkit_secrets_v1_GetSecretRequest } from '../gen/types.js';
import { BuildkitError } from './errors.js';
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

/** buildkitd's error for a step that mounts a secret the session does not serve: `secret token: not found`. */
const missingSecret = /\bsecret ([^\s:]+): not found\b/;

/**
 * A step failed for a secret nobody passed: the error says how to pass it. `withFlag`: the command
 * takes `--secret` (build, push); the others (run, serve, exec) take none, so the image is built first.
 */
export function explainMissingSecret(err: unknown, withFlag: boolean): unknown {
  if (!(err instanceof Error) || (err instanceof CogError && err.hint)) return err;
  const id = missingSecret.exec(err.message)?.[1];
  if (id === undefined) return err;
  return new BuildkitError(err.message, {
    cause: err,
    hint: withFlag
      ? `a build step mounts the secret "${id}": pass it with --secret id=${id},src=FILE or --secret id=${id},env=VAR`
      : `a build step mounts the secret "${id}", and this command passes no build secrets: build the image with \`cog build --secret id=${id},src=FILE -t NAME\`, then run NAME`,
  });
}
