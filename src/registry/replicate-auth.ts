/**
 * Replicate's CLI-token login for its registry (r8.im):
 *   GET  /cog/v1/display-token-url  -> {"url": "<page that shows the CLI token>"}; 404: not Replicate
 *   POST /cog/v1/verify-token       form token=<token> -> {"username": …}; 404: no such user
 * The token then serves as the registry password for that username. API tokens (`r8_…`) are a
 * different thing and are refused before anything is sent.
 *
 * Which flow `cog login` uses: the Replicate one when the host is `r8.im`, or when COG_REPLICATE_LOGIN=1
 * (for Replicate-compatible hosts and tests); every other host gets the username/password flow. We do
 * not probe unknown registries for the Replicate endpoints.
 */
import { normalizeRegistryHost } from '../buildkit/docker-config.js';
import { CogError } from '../errors.js';
import { secureContextWithExtraCa } from '../extra-ca.js';
import { RegistryDispatchers, dispatchRequest } from './http-agent.js';
import { proxySettings } from './proxy.js';
import { defaultReplicateHost, insecureRegistries, isInsecureHost } from './settings.js';

export { defaultRegistryHost, defaultReplicateHost } from './settings.js';

/** Where a Replicate user finds the CLI token. */
export const replicateTokenPage = 'https://replicate.com/auth/token';

/** Whether to use the Replicate token flow for `host` (see the file comment). */
export function usesReplicateLogin(host: string, env: NodeJS.ProcessEnv): boolean {
  return normalizeRegistryHost(host) === defaultReplicateHost || env.COG_REPLICATE_LOGIN === '1';
}

/** Whether a token is a Replicate API token rather than a CLI token. */
export function isApiToken(token: string): boolean {
  return token.startsWith('r8_');
}

export interface ReplicateAuthOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
}

/** `https://host`, or `http://host` for loopback and COG_INSECURE_REGISTRIES hosts. */
export function replicateBaseUrl(host: string, env: NodeJS.ProcessEnv): string {
  const normal = normalizeRegistryHost(host);
  return `${isInsecureHost(normal, insecureRegistries(env)) ? 'http' : 'https'}://${normal}`;
}

/** How long Replicate's login endpoints may take to answer once connected. */
const answerWithinMs = 20_000;

async function call(
  host: string,
  path: string,
  init: { method: 'GET' | 'POST'; body?: string; headers?: Record<string, string> },
  options: ReplicateAuthOptions,
): Promise<{ status: number; json: unknown }> {
  const env = options.env ?? process.env;
  const url = `${replicateBaseUrl(host, env)}${path}`;
  // the trust the registry client has: Node's roots plus SSL_CERT_FILE's and NODE_EXTRA_CA_CERTS'
  // and the same proxy (HTTPS_PROXY, NO_PROXY)
  const dispatchers = new RegistryDispatchers({
    connections: 1,
    secureContext: () => secureContextWithExtraCa(env),
    proxies: proxySettings(env),
  });
  try {
    let res;
    try {
      res = await dispatchRequest(dispatchers.for(url), url, {
        method: init.method,
        headers: { 'user-agent': 'cog-ts', accept: 'application/json', ...(init.headers ?? {}) },
        ...(init.body === undefined ? {} : { body: init.body }),
        ...(options.signal ? { signal: options.signal } : {}),
        // a server that takes the connection and says nothing fails in seconds, not undici's 5 minutes
        headersTimeout: answerWithinMs,
      });
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).message;
      if (code === 'UND_ERR_HEADERS_TIMEOUT')
        throw new CogError(
          `${normalizeRegistryHost(host)} did not answer ${init.method} ${url} within ${answerWithinMs / 1000} s`,
          {
            hint: `${normalizeRegistryHost(host)} takes connections but does not answer: check the address, and that the service is healthy`,
            cause: err,
          },
        );
      throw new CogError(
        `cannot reach ${normalizeRegistryHost(host)}: ${init.method} ${url} failed (${code})`,
        {
          hint: 'check the registry address and your network',
          cause: err,
        },
      );
    }
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json };
  } finally {
    await dispatchers.close();
  }
}

const stringField = (json: unknown, name: string): string | undefined => {
  const value = (json as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' && value ? value : undefined;
};

/** The URL of the page that shows the user's CLI token. */
export async function displayTokenUrl(host: string, options: ReplicateAuthOptions = {}): Promise<string> {
  const registry = normalizeRegistryHost(host);
  const { status, json } = await call(registry, '/cog/v1/display-token-url', { method: 'GET' }, options);
  if (status === 404)
    throw new CogError(`${registry} is not a Replicate registry (it has no token login)`, {
      hint:
        (options.env ?? process.env).COG_REPLICATE_LOGIN === '1'
          ? `unset COG_REPLICATE_LOGIN and run \`cog login ${registry}\` to log in with a username and password (or use \`docker login ${registry}\`)`
          : `log in with a username and password: \`cog login ${registry}\` or \`docker login ${registry}\``,
    });
  const url = status === 200 ? stringField(json, 'url') : undefined;
  if (!url)
    throw new CogError(
      `${registry} did not say where to get a login token (GET /cog/v1/display-token-url answered HTTP ${status})`,
      { hint: 'try again later; if it persists, check the registry address' },
    );
  return url;
}

/** Exchanges a CLI token for the username it belongs to; rejects API tokens without sending them. */
export async function verifyReplicateToken(
  host: string,
  token: string,
  options: ReplicateAuthOptions = {},
): Promise<string> {
  const registry = normalizeRegistryHost(host);
  if (isApiToken(token))
    throw new CogError('that is a Replicate API token (it starts with r8_), not a CLI login token', {
      hint: `get the CLI token from ${replicateTokenPage} and run \`cog login\` again`,
    });
  const { status, json } = await call(
    registry,
    '/cog/v1/verify-token',
    {
      method: 'POST',
      body: new URLSearchParams({ token }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    },
    options,
  );
  if (status === 404)
    throw new CogError(`login to ${registry} failed: no user has that token`, {
      hint: `copy the token again from ${replicateTokenPage}; nothing was stored`,
    });
  const username = status === 200 ? stringField(json, 'username') : undefined;
  if (!username)
    throw new CogError(`login to ${registry} failed: verifying the token answered HTTP ${status}`, {
      hint:
        status === 401 || status === 403
          ? `the token was refused; copy it again from ${replicateTokenPage}; nothing was stored`
          : 'try again later; nothing was stored',
    });
  return username;
}
