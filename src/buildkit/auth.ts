/**
 * The session's Auth service (moby.filesync.v1.Auth): buildkitd asks it for registry credentials when a
 * pull or push needs them. For a registry that answers Basic, it asks Credentials, and we answer from
 * docker's config.json / credential helpers (see docker-config.ts) or from credentials given directly.
 * For a Bearer registry, given a token source, we are its token authority (as buildx is): the daemon asks
 * GetTokenAuthority, then FetchToken for each scope, and the password never leaves this process — the
 * daemon holds only short-lived tokens, which we know and mask in what it says. Without a token source
 * (or with BUILDKIT_NO_CLIENT_TOKEN=1), and for a registry this machine does not reach (a daemon on
 * another network may), the token methods answer that there is no authority, and the daemon fetches
 * tokens itself with the credentials it asks for.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type {
  moby_filesync_v1_CredentialsRequest,
  moby_filesync_v1_CredentialsResponse,
  moby_filesync_v1_FetchTokenRequest,
  moby_filesync_v1_FetchTokenResponse,
  moby_filesync_v1_GetTokenAuthorityRequest,
  moby_filesync_v1_GetTokenAuthorityResponse,
  moby_filesync_v1_VerifyTokenAuthorityRequest,
  moby_filesync_v1_VerifyTokenAuthorityResponse,
} from '../gen/types.js';
import { CogError } from '../errors.js';
import {
  type CredentialOptions,
  dockerConfigDir,
  dockerHubHost,
  normalizeRegistryHost,
} from './docker-config.js';
import { BuildkitError } from './errors.js';
import type { IssuedToken } from '../registry/client.js';
import { type Keychain, sessionKeychain } from '../registry/keychain.js';
import { credentialSecrets } from '../registry/redact.js';
import type { SessionService } from './session.js';
import { authorityKey, publicKeyBytes, signedPayload } from './token-authority.js';

/** What buildkitd asks a token for: the challenge's token service and the scopes it needs. */
export interface RegistryTokenRequest {
  /** the registry host as the daemon spoke to it (`registry-1.docker.io` for Docker Hub) */
  readonly host: string;
  readonly realm: string;
  readonly service: string | undefined;
  readonly scopes: readonly string[];
}

/** Registry tokens fetched here, with our credentials for the host, for buildkitd. */
export interface RegistryTokenSource {
  /**
   * whether this machine reaches the registry (buildkitd, on another machine or network, may reach
   * one this machine cannot): the session is the token authority only for those it does
   */
  reaches(host: string, signal: AbortSignal): Promise<boolean>;
  /** a token from the registry's token service for the scopes asked */
  fetch(request: RegistryTokenRequest, signal: AbortSignal): Promise<IssuedToken>;
}

export interface AuthServiceOptions extends CredentialOptions {
  /**
   * registries COG_REGISTRY_USERNAME/COG_REGISTRY_PASSWORD (from `env`) answer for, ahead of config.json:
   * the build's push destination. Never others: buildkitd also asks for the base images' registries.
   */
  readonly envCredentialsFor?: readonly string[];
  /** where credentials come from, instead of the keychain made of envCredentialsFor and the config */
  readonly keychain?: Keychain;
  /**
   * fetches tokens for Bearer registries (with the same credentials as `keychain`'s): makes the session
   * the daemon's token authority; without it the daemon fetches tokens itself
   */
  readonly tokens?: RegistryTokenSource;
  /** told of every Credentials and FetchToken request (host as the daemon sent it) and its outcome; never of a secret */
  readonly onRequest?: (host: string, outcome: 'credentials' | 'anonymous' | 'token' | 'error') => void;
  /**
   * what was handed to the daemon is added here (credentialSecrets, tokens), to be masked in what it
   * says: a registry may echo them in a refusal, which the daemon passes on
   */
  readonly handedOut?: Set<string>;
}

const unimplemented = (method: string) => (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
  callback({ code: grpc.status.UNIMPLEMENTED, details: `${method} is not implemented by cog-ts` });

/** BUILDKIT_NO_CLIENT_TOKEN=1 (buildx's switch): the daemon fetches tokens itself. */
function clientTokensDisabled(env: NodeJS.ProcessEnv): boolean {
  return /^(1|t|true)$/i.test(env.BUILDKIT_NO_CLIENT_TOKEN ?? '');
}

/**
 * The error the daemon puts into the build's error: which registry, and what to do. `asked`: what the
 * daemon asked for, named when the message does not name the registry.
 */
function failure(host: string, err: unknown, asked = 'registry credentials'): grpc.ServiceError {
  const message = err instanceof Error ? err.message : String(err);
  const hint = err instanceof CogError && err.hint ? ` (${err.hint})` : '';
  const prefix = message.includes(host) ? '' : `${asked} for ${host}: `;
  return Object.assign(new Error(`${prefix}${message}${hint}`), {
    code: grpc.status.UNKNOWN,
    details: `${prefix}${message}${hint}`,
    metadata: new grpc.Metadata(),
  });
}

/** An AbortSignal that fires when the daemon cancels the call. */
function cancelledWith(call: grpc.ServerUnaryCall<unknown, unknown>): AbortSignal {
  const controller = new AbortController();
  call.once('cancelled', () => controller.abort(new Error('buildkitd cancelled the request')));
  return controller.signal;
}

export function authService(options: AuthServiceOptions = {}): SessionService {
  const keychain = options.keychain ?? sessionKeychain(options.envCredentialsFor ?? [], options);
  const resolve = (host: string) => keychain.resolve(host);
  const tokens = options.tokens;
  const env = options.env ?? process.env;
  /** this session's secret per registry, mixed into the authority key when we hold credentials there */
  const secrets = new Map<string, Buffer>();
  const keyFor = async (host: string, salt: Uint8Array | undefined) => {
    const creds = await resolve(host);
    const name = normalizeRegistryHost(host);
    let secret = secrets.get(name);
    if (creds && !secret) secrets.set(name, (secret = randomBytes(32)));
    return authorityKey(salt ?? new Uint8Array(), creds ? secret : undefined);
  };
  /** per registry, whether this machine reaches it: asked once, when buildkitd first asks about it */
  const reached = new Map<string, Promise<boolean>>();
  const reaches = (source: RegistryTokenSource, host: string, signal: AbortSignal) => {
    const name = normalizeRegistryHost(host);
    let known = reached.get(name);
    if (!known) {
      known = source.reaches(host, signal);
      reached.set(name, known);
      known.catch(() => reached.delete(name));
    }
    return known;
  };
  /**
   * a token-authority method, or (no token source, or switched off) UNIMPLEMENTED: "no authority".
   * For a registry this machine does not reach, GetTokenAuthority and VerifyTokenAuthority answer
   * UNIMPLEMENTED as well (the code buildkitd takes as "no authority" from both; UNAVAILABLE only from
   * the first): buildkitd fetches that registry's tokens itself.
   */
  const authority = <Req extends { Host?: string | undefined }, Res>(
    method: string,
    answer: (request: Req, source: RegistryTokenSource, signal: AbortSignal) => Promise<Res>,
    asked = 'registry credentials',
    onlyWhereReached = true,
  ) =>
    tokens && !clientTokensDisabled(env)
      ? (call: grpc.ServerUnaryCall<Req, unknown>, callback: grpc.sendUnaryData<Res>) => {
          const host = call.request.Host ?? '';
          const signal = cancelledWith(call);
          (async () => {
            if (onlyWhereReached && !(await reaches(tokens, host, signal))) return undefined;
            return await answer(call.request, tokens, signal);
          })().then(
            (response) =>
              response === undefined
                ? callback({
                    code: grpc.status.UNIMPLEMENTED,
                    details: `cog-ts does not reach ${host} from this machine: buildkitd fetches its tokens itself`,
                  })
                : callback(null, response),
            (err: unknown) => callback(failure(host, err, asked)),
          );
        }
      : unimplemented(method);
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
            callback(failure(host, err));
          },
        );
      },
      GetTokenAuthority: authority(
        'GetTokenAuthority',
        async (
          request: moby_filesync_v1_GetTokenAuthorityRequest,
        ): Promise<moby_filesync_v1_GetTokenAuthorityResponse> => ({
          PublicKey: publicKeyBytes(await keyFor(request.Host ?? '', request.Salt)),
        }),
      ),
      VerifyTokenAuthority: authority(
        'VerifyTokenAuthority',
        async (
          request: moby_filesync_v1_VerifyTokenAuthorityRequest,
        ): Promise<moby_filesync_v1_VerifyTokenAuthorityResponse> => ({
          Signed: signedPayload(
            await keyFor(request.Host ?? '', request.Salt),
            request.Payload ?? new Uint8Array(),
          ),
        }),
      ),
      FetchToken: authority(
        'FetchToken',
        async (
          request: moby_filesync_v1_FetchTokenRequest,
          source,
          signal,
        ): Promise<moby_filesync_v1_FetchTokenResponse> => {
          const host = request.Host ?? '';
          const wanted = { host, realm: request.Realm ?? '', service: request.Service || undefined };
          try {
            const issued = await source.fetch({ ...wanted, scopes: request.Scopes ?? [] }, signal);
            options.onRequest?.(host, 'token');
            options.handedOut?.add(issued.token);
            return { Token: issued.token, ExpiresIn: issued.expiresIn, IssuedAt: issued.issuedAt };
          } catch (err) {
            options.onRequest?.(host, 'error');
            throw err;
          }
        },
        'a registry token',
        // buildkitd asks for tokens only where the authority was granted
        false,
      ),
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
