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
        // a secret passed but unreadable is not NOT_FOUND: buildkitd would say `secret ID: not found`
        // (as though nobody passed it), or run an optional mount without it; any other code fails the
        // step with our message, as buildx does for a file it cannot read
        readSecret(id, source, env).then(
          (data) => callback(null, { data }),
          (err: Error) => callback({ code: grpc.status.FAILED_PRECONDITION, details: err.message }),
        );
      },
    },
  };
}

/** buildkitd's error for a step that mounts a secret the session does not serve: `secret token: not found`. */
const missingSecret = /\bsecret ([^\s:]+): not found\b/;

/** The session's answer for a secret it has but cannot read (readSecret's errors), as buildkitd passes it on. */
const unreadableVariable = /\bsecret ([^\s:]+): environment variable (\S+) is not set\b/;
const unreadableFile = /\bsecret ([^\s:]+): cannot read the file (.+?): ([^\n]+)/;

/**
 * A step failed for a secret nobody passed: the error says how to pass it. `withFlag`: the command
 * takes `--secret` (every command when it builds the project); without it (one that runs IMAGE, which
 * builds nothing) the hint says to build the image with the secret.
 * A secret that was passed but could not be read when the step asked says so, with its source and why.
 */
export function explainMissingSecret(err: unknown, withFlag: boolean): unknown {
  if (!(err instanceof Error) || (err instanceof CogError && err.hint)) return err;
  const passed = withFlag ? 'was passed with --secret' : 'was passed';
  const variable = unreadableVariable.exec(err.message);
  if (variable)
    return new BuildkitError(err.message, {
      cause: err,
      hint: `a build step mounts the secret "${variable[1]}", which ${passed} from the variable ${variable[2]}, but ${variable[2]} is not set in cog's environment: export ${variable[2]}=…, or give the secret a file with --secret id=${variable[1]},src=FILE`,
    });
  const file = unreadableFile.exec(err.message);
  if (file)
    return new BuildkitError(err.message, {
      cause: err,
      hint: `a build step mounts the secret "${file[1]}", which ${passed} from the file ${file[2]}, but when the step asked for it the file could not be read (${file[3]}): make it a readable file, or take the secret from a variable with --secret id=${file[1]},env=VAR`,
    });
  const id = missingSecret.exec(err.message)?.[1];
  if (id === undefined) return err;
  return new BuildkitError(err.message, {
    cause: err,
    hint: withFlag
      ? `a build step mounts the secret "${id}": pass it with --secret id=${id},src=FILE or --secret id=${id},env=VAR`
      : `a build step mounts the secret "${id}", and this command passes no build secrets: build the image with \`cog build --secret id=${id},src=FILE -t NAME\`, or give the command that builds it --secret id=${id},src=FILE`,
  });
}
