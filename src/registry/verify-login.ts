/**
 * Checks credentials against a registry before they are stored, the way `docker login` does: GET /v2/
 * through the registry client with a keychain that answers only these credentials, so both Basic
 * registries (the credentials go with the request) and Bearer registries (the token service must
 * accept them) are covered.
 */
import { normalizeRegistryHost } from '../buildkit/docker-config.js';
import { CogError } from '../errors.js';
import { RegistryClient } from './client.js';
import { RegistryError, responseError } from './errors.js';
import type { Keychain, RegistryCredentials } from './keychain.js';
import { defaultRetryPolicy } from './retry.js';

export interface VerifyLoginOptions {
  /** environment for COG_INSECURE_REGISTRIES (default process.env) */
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
}

/** The credentials were refused by the registry (or its token service). Nothing was stored. */
export class LoginRejectedError extends CogError {
  constructor(registry: string, status: number, said = '') {
    super(
      `login to ${registry} failed: the registry rejected the credentials (HTTP ${status}${said ? `: ${said}` : ''})`,
      { hint: 'check the username and the password or token; nothing was stored' },
    );
  }
}

/** A keychain that gives these credentials for every host. */
export function fixedKeychain(credentials: RegistryCredentials): Keychain {
  return { resolve: () => Promise.resolve(credentials) };
}

/** Resolves when the registry accepts the credentials; rejects with LoginRejectedError when it refuses. */
export async function verifyRegistryLogin(
  host: string,
  credentials: RegistryCredentials,
  options: VerifyLoginOptions = {},
): Promise<void> {
  const registry = normalizeRegistryHost(host);
  const client = new RegistryClient({
    keychain: fixedKeychain(credentials),
    env: options.env ?? process.env,
    retry: { ...defaultRetryPolicy, attempts: 3, initialDelayMs: 500, maxDelayMs: 4000 },
  });
  try {
    let status: number;
    let said = '';
    try {
      const res = await client.send({
        registry,
        method: 'GET',
        url: '/v2/',
        scopes: [],
        ...(options.signal ? { signal: options.signal } : {}),
      });
      status = res.statusCode;
      if (status >= 200 && status < 300) await res.body.dump();
      // what it said, with the credentials masked should it echo them (the client masks what it sent)
      else
        said = (
          await responseError(
            res,
            await client.errorContext(registry, `logging in to ${registry}`, 'GET', '/v2/'),
          )
        ).said;
    } catch (err) {
      if (err instanceof RegistryError && (err.status === 401 || err.status === 403))
        throw new LoginRejectedError(registry, err.status, err.said);
      throw err;
    }
    if (status === 401 || status === 403) throw new LoginRejectedError(registry, status, said);
    if (status === 431)
      throw new CogError(
        `login to ${registry} failed: the registry refused the request's headers as too large (HTTP 431)`,
        {
          hint: 'the credentials are longer than the registry accepts in a request header; check that the whole password or token (and nothing else) was given; nothing was stored',
        },
      );
    if (status < 200 || status >= 300)
      throw new CogError(
        `login to ${registry} failed: GET /v2/ answered HTTP ${status}${said ? ` (${said})` : ''}`,
        {
          hint: `check that ${registry} is an OCI registry; nothing was stored`,
        },
      );
  } finally {
    await client.close();
  }
}
