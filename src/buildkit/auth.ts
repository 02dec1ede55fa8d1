/**
 * The session's Auth service (moby.filesync.v1.Auth): buildkitd asks it for registry credentials when a
 * pull or push needs them. We answer Credentials from docker's config.json / credential helpers (see
 * docker-config.ts) or from credentials given directly; the token-authority methods answer UNIMPLEMENTED,
 * which the daemon takes as "no authority" and then fetches registry tokens itself with the credentials.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type {
  moby_filesync_v1_CredentialsRequest,
  moby_filesync_v1_CredentialsResponse,
} from '../gen/types.js';
import { CogError } from '../errors.js';
import { type CredentialOptions, dockerConfigDir, dockerHubHost } from './docker-config.js';
import { BuildkitError } from './errors.js';
import { sessionKeychain } from '../registry/keychain.js';
import { credentialSecrets } from '../registry/redact.js';
import type { SessionService } from './session.js';

export interface AuthServiceOptions extends CredentialOptions {
  /**
   * registries COG_REGISTRY_USERNAME/COG_REGISTRY_PASSWORD (from `env`) answer for, ahead of config.json:
   * the build's push destination. Never others: buildkitd also asks for the base images' registries.
   */
  readonly envCredentialsFor?: readonly string[];
  /** told of every Credentials request (host as the daemon sent it) and its outcome; never of a secret */
  readonly onRequest?: (host: string, outcome: 'credentials' | 'anonymous' | 'error') => void;
  /**
   * what was handed to the daemon is added here (credentialSecrets), to be masked in what it says: a
   * registry may echo the credentials in a refusal, which the daemon passes on
   */
  readonly handedOut?: Set<string>;
}

const unimplemented = (method: string) => (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
  callback({ code: grpc.status.UNIMPLEMENTED, details: `${method} is not implemented by cog-ts` });

export function authService(options: AuthServiceOptions = {}): SessionService {
  const keychain = sessionKeychain(options.envCredentialsFor ?? [], options);
  const resolve = (host: string) => keychain.resolve(host);
  return {
    name: 'moby.filesync.v1.Auth',
    implementation: {
      Credentials: (
        call: grpc.ServerUnaryCall<moby_filesync_v1_CredentialsRequest, unknown>,
        callback: grpc.sendUnaryData<moby_filesync_v1_CredentialsResponse>,
      ) => {
        const host = call.request.Host ?? '';
        resolve(host).then(
          (creds) => {
            options.onRequest?.(host, creds ? 'credentials' : 'anonymous');
            for (const secret of creds ? credentialSecrets(creds) : []) options.handedOut?.add(secret);
            callback(null, creds ? { Username: creds.username, Secret: creds.secret } : {});
          },
          (err: unknown) => {
            options.onRequest?.(host, 'error');
            // the daemon puts this text into the build's error: say which registry, and what to do
            const message = err instanceof Error ? err.message : String(err);
            const hint = err instanceof CogError && err.hint ? ` (${err.hint})` : '';
            const prefix = message.includes(host) ? '' : `registry credentials for ${host}: `;
            callback({ code: grpc.status.UNKNOWN, details: `${prefix}${message}${hint}` });
          },
        );
      },
      FetchToken: unimplemented('FetchToken'),
      GetTokenAuthority: unimplemented('GetTokenAuthority'),
      VerifyTokenAuthority: unimplemented('VerifyTokenAuthority'),
    },
  };
}

/** A registry refusing us: 401/403 or the distribution spec's UNAUTHORIZED/DENIED error codes. */
const authFailure =
  /\b(401 Unauthorized|403 Forbidden|unauthorized|authentication required|insufficient_scope|access[ _]denied|denied: requested access)/i;

/** The registry host named in a daemon error: the host of the first URL, else of an image reference. */
export function registryHostInError(message: string): string | undefined {
  const url = /\bhttps?:\/\/([^/\s"']+)/.exec(message);
  if (url?.[1]) return url[1] === 'registry-1.docker.io' ? dockerHubHost : url[1];
  const ref =
    /\b((?:[a-z0-9-]+\.)+[a-z0-9-]+(?::\d+)?|localhost(?::\d+)?|[\d.]+:\d+)\/[a-z0-9._/-]+[:@]/i.exec(
      message,
    );
  return ref?.[1];
}

/**
 * Turns a failed solve whose cause is a registry refusing our (missing or wrong) credentials into an error
 * that names the registry and says where credentials come from; any other error is returned unchanged.
 */
export function explainRegistryAuthError(
  err: unknown,
  options: { readonly configDir?: string; readonly env?: NodeJS.ProcessEnv } = {},
): unknown {
  if (!(err instanceof Error) || !authFailure.test(err.message)) return err;
  const host = registryHostInError(err.message);
  if (!host) return err;
  const configFile = join(options.configDir ?? dockerConfigDir(options.env ?? process.env), 'config.json');
  return new BuildkitError(`registry ${host} refused access (${err.message})`, {
    cause: err,
    hint:
      `log in with \`cog login ${host}\` (or docker login; credentials are read from ${configFile}; set DOCKER_CONFIG ` +
      `to use another directory${/\bpush/i.test(err.message) ? '; or set COG_REGISTRY_USERNAME and COG_REGISTRY_PASSWORD' : ''}), and check that the account can ${/\bpush/i.test(err.message) ? 'push to the repository' : 'read the image'}`,
  });
}

/** The daemon could not talk to a registry at all: no such host, refused, timed out, TLS. */
const unreachable =
  /\b(no such host|connection refused|i\/o timeout|network is unreachable|no route to host|x509:|tls: |server gave HTTP response to HTTPS client)/i;

/**
 * Turns a failed push whose cause is that buildkitd cannot reach the registry into an error that names
 * the registry and says what to check (buildkitd, not cog, connects to it); anything else is returned
 * unchanged.
 */
export function explainRegistryReachError(err: unknown): unknown {
  if (!(err instanceof Error) || !/failed to push/i.test(err.message) || !unreachable.test(err.message))
    return err;
  const host = registryHostInError(err.message);
  if (!host) return err;
  const plainHttp = /server gave HTTP response to HTTPS client/i.test(err.message);
  return new BuildkitError(`buildkitd could not reach registry ${host} to push (${err.message})`, {
    cause: err,
    hint: plainHttp
      ? `${host} speaks plain HTTP: list it in buildkitd.toml as [registry."${host}"] http = true, or push with \`cog push\` (plain HTTP for hosts in COG_INSECURE_REGISTRIES and on this machine)`
      : `check the registry in the image name (-t, or 'image' in cog.yaml), and that the machine buildkitd runs on can reach ${host}`,
  });
}
