/**
 * One client per process (or per command): an undici Agent speaking HTTP/1.1 over several connections,
 * plus the per-registry auth state (the /v2/ ping's challenge and bearer tokens per scope). `send` makes
 * one authorised request; callers decide what to retry. Tokens and credentials never leave this file
 * except in the Authorization header sent to the registry's own origin or its token realm.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ProxyNoAnswerError, RegistryDispatchers, dispatchRequest } from './http-agent.js';
import { describeProxy, proxyRefusal, proxySettings, proxyVariable } from './proxy.js';
import { CogError } from '../errors.js';
import { extraCaCertificates, secureContextWith } from '../extra-ca.js';
import { type Challenge, pickChallenge, pushScopes } from './challenge.js';
import { type ErrorContext, RegistryError, headerValue, redactUrl, responseError } from './errors.js';
import { type Keychain, type RegistryCredentials, defaultKeychain } from './keychain.js';
import { credentialSecrets } from './redact.js';
import { grantedActions, grantsPush } from './token-grants.js';
import { type RepositoryRef, apiHost } from './reference.js';
import { type RetryPolicy, defaultRetryPolicy, withRetry } from './retry.js';
import { insecureRegistries, isInsecureHost, isLoopbackHost } from './settings.js';
import { tlsTrustHint } from './tls-trust.js';

/** A request body: bytes, or a function that opens a fresh stream (so the request can be replayed). */
export type RequestBody = Buffer | string | (() => Readable) | undefined;

export interface RegistryRequest {
  /** the registry as in a Reference (`docker.io`, `127.0.0.1:5000`) */
  readonly registry: string;
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** a path starting with /v2/, or an absolute URL (an upload Location) */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  /** token scopes, e.g. `repository:user/model:pull,push` */
  readonly scopes: readonly string[];
  readonly signal?: AbortSignal | undefined;
}

export interface RegistryClientOptions {
  /** where credentials come from (default: COG_REGISTRY_* variables, then docker's config.json) */
  readonly keychain?: Keychain;
  /** environment for defaults: COG_INSECURE_REGISTRIES and the default keychain (default process.env) */
  readonly env?: NodeJS.ProcessEnv;
  /** hosts to reach over plain HTTP, in addition to loopback (default from COG_INSECURE_REGISTRIES) */
  readonly insecureRegistries?: readonly string[];
  /** connections per registry origin (default 8) */
  readonly connections?: number;
  /** how long the /v2/ ping waits for an answer once connected (default 10 s) */
  readonly pingAnswerMs?: number;
  /** how long a proxy (HTTP(S)_PROXY) may take to answer a CONNECT (default 10 s) */
  readonly proxyAnswerMs?: number;
  /** an undici dispatcher to use instead of our own Agent (not closed by close()) */
  readonly dispatcher?: Dispatcher;
  readonly retry?: RetryPolicy;
  readonly userAgent?: string;
}

interface Token {
  readonly value: string;
  readonly expiresAt: number;
  /** seconds the token service said it lasts (or our default for none) */
  readonly expiresIn: number;
  /** when it was asked for, in ms since the epoch */
  readonly issuedAt: number;
}

/** A bearer token issued for someone else's requests (buildkitd's, through the build session). */
export interface IssuedToken {
  readonly token: string;
  /** seconds from `issuedAt` */
  readonly expiresIn: number;
  /** unix seconds */
  readonly issuedAt: number;
}

interface HostState {
  ping?: Promise<Challenge | undefined> | undefined;
  /** the scheme the /v2/ ping answered on */
  scheme?: 'https' | 'http' | undefined;
  credentials?: Promise<RegistryCredentials | undefined> | undefined;
  readonly tokens: Map<string, Promise<Token>>;
  /** its token service answered the OAuth2 POST 404 or 405: identity tokens go by GET from then on */
  noOAuthPost?: boolean;
  /** the credentials and tokens sent to it: masked in what it says (ErrorContext.secrets) */
  readonly secrets: Set<string>;
}

/** Tokens are renewed this long before they expire. */
const tokenSlackMs = 15_000;

function isAbort(err: unknown): boolean {
  const { name, code } = (err ?? {}) as { name?: string; code?: string };
  return name === 'AbortError' || code === 'ABORT_ERR' || code === 'UND_ERR_ABORTED';
}

/**
 * Throws a RegistryError for a proxy that would not pass a request on to the registry (refused it, or
 * took the connection and never answered); returns otherwise.
 */
function throwProxyRefusal(
  err: unknown,
  proxy: URL,
  registry: string,
  method: string,
  url: string,
  answerWithinMs: number | undefined,
): void {
  const variable = proxyVariable(new URL(url));
  if (err instanceof ProxyNoAnswerError)
    throw new RegistryError(
      `the proxy ${describeProxy(proxy)} (${variable}) took the connection and did not answer the request for a tunnel to ${registry} within ${err.answerMs / 1000} s`,
      {
        status: undefined,
        method,
        url,
        cause: err,
        hint: `check the proxy, or list ${apiHost(registry)} in NO_PROXY to connect directly`,
      },
    );
  // a plain-HTTP request goes to the proxy itself (no tunnel): the proxy, or the registry behind it, is silent
  if (errorCode(err) === 'UND_ERR_HEADERS_TIMEOUT' && answerWithinMs !== undefined)
    throw new RegistryError(
      `no answer to ${method} ${redactUrl(url)} through the proxy ${describeProxy(proxy)} (${variable}) within ${answerWithinMs / 1000} s`,
      {
        status: undefined,
        method,
        url,
        cause: err,
        hint: `the proxy or ${registry} behind it does not answer: check the proxy, or list ${apiHost(registry)} in NO_PROXY to connect directly`,
      },
    );
  const status = proxyRefusal(err);
  if (status === undefined) return;
  throw new RegistryError(
    `the proxy ${describeProxy(proxy)} (${variable}) would not open a connection to ${registry}: it answered HTTP ${status}`,
    {
      // a refusal of our credentials is final; anything else a proxy says may pass, as a connection failure
      status: status === 407 ? 407 : undefined,
      method,
      url,
      cause: err,
      hint:
        status === 407
          ? `the proxy wants credentials: put them in ${variable} (http://user:password@host:port)`
          : `check the proxy, or list ${apiHost(registry)} in NO_PROXY to connect directly`,
    },
  );
}

/**
 * `pending`, or its rejection with the signal's reason as soon as `signal` aborts: undici sees an abort
 * only once the request has a connection, so Ctrl-C waited for a connection being opened (a proxy's
 * CONNECT: up to its time limit). An answer that comes after the abort is let go.
 */
function untilAborted(
  signal: AbortSignal | undefined,
  onAbandon: () => void,
  pending: Promise<Dispatcher.ResponseData>,
): Promise<Dispatcher.ResponseData> {
  if (!signal) return pending;
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      onAbandon();
      reject(signal.reason);
      pending.then(
        (res) => res.body.destroy(),
        () => undefined,
      );
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (res) => {
        signal.removeEventListener('abort', onAbort);
        resolve(res);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function errorCode(err: unknown): string {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return (err as Error)?.message ?? String(err);
}

/**
 * Whether `err` is a request that got no answer at the connection: refused, no such host, a TLS
 * certificate we do not trust, a reset (not a registry that took the connection and never answered,
 * nor any answer).
 */
export function isConnectionFailure(err: unknown): err is RegistryError {
  return (
    err instanceof RegistryError &&
    err.status === undefined &&
    errorCode(err.cause) !== 'UND_ERR_HEADERS_TIMEOUT'
  );
}

/** Tries of the /v2/ ping; any call's retries do not try it again once it failed them all. */
const pingAttempts = 3;

/**
 * How long the /v2/ ping waits for an answer once connected: a server that takes the connection and
 * never answers (not a registry, or a hung one) fails in seconds, not after undici's 5 minutes.
 */
const defaultPingAnswerMs = 10_000;

/** A scope with its actions sorted: `repository:x:push,pull` and `repository:x:pull,push` are one. */
function normalScope(scope: string): string {
  const at = scope.lastIndexOf(':');
  if (at < 0) return scope;
  const actions = scope
    .slice(at + 1)
    .split(',')
    .filter(Boolean)
    .sort()
    .join(',');
  return `${scope.slice(0, at)}:${actions}`;
}

/** The token cache's key for a set of scopes. */
const scopeKey = (scopes: readonly string[]) => scopes.map(normalScope).sort().join(' ');

/** One request to a token service. */
interface TokenRequest {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
}

export class RegistryClient {
  readonly retry: RetryPolicy;
  private readonly keychain: Keychain;
  private readonly insecure: readonly string[];
  /** direct, or through the proxy HTTP(S)_PROXY names; a dispatcher given in the options is not closed */
  private readonly dispatchers: Pick<RegistryDispatchers, 'for' | 'proxyOf' | 'close'>;
  private readonly userAgent: string;
  private readonly hosts = new Map<string, HostState>();
  private readonly pingAnswerMs: number;
  /** a request was given up when its signal aborted, before undici had a connection for it */
  private abandoned = false;

  constructor(options: RegistryClientOptions = {}) {
    const env = options.env ?? process.env;
    this.pingAnswerMs = options.pingAnswerMs ?? defaultPingAnswerMs;
    this.keychain = options.keychain ?? defaultKeychain(env);
    this.insecure = options.insecureRegistries ?? insecureRegistries(env);
    this.retry = options.retry ?? defaultRetryPolicy;
    this.userAgent = options.userAgent ?? 'cog-ts';
    // the extra CAs are read now (a bad file fails here, not as a retried connection error); the
    // TLS context made of them only when the first HTTPS connection is
    const extraCa = options.dispatcher ? undefined : extraCaCertificates(env);
    const given = options.dispatcher;
    this.dispatchers = given
      ? { for: () => given, proxyOf: () => undefined, close: async () => undefined }
      : new RegistryDispatchers({
          connections: options.connections ?? 8,
          secureContext: () => secureContextWith(extraCa),
          proxies: proxySettings(env),
          ...(options.proxyAnswerMs === undefined ? {} : { proxyAnswerMs: options.proxyAnswerMs }),
        });
  }

  /** Closes the connections; at once when a request was given up on abort (it may wait on a connect). */
  async close(): Promise<void> {
    await this.dispatchers.close({ now: this.abandoned });
  }

  /** Whether `registry` may be spoken to over plain HTTP: loopback and the insecure list. */
  private mayUseHttp(registry: string): boolean {
    return isInsecureHost(apiHost(registry), this.insecure) || isInsecureHost(registry, this.insecure);
  }

  /**
   * `http(s)://<api host>`: the scheme the /v2/ ping answered on. Before the ping: HTTPS, or plain HTTP
   * for loopback and the insecure list (see pingRequest for the order the ping tries them in).
   */
  baseUrl(registry: string): string {
    const scheme = this.hosts.get(registry)?.scheme ?? (this.mayUseHttp(registry) ? 'http' : 'https');
    return `${scheme}://${apiHost(registry)}`;
  }

  /** An absolute URL for a path or (possibly relative) Location. */
  resolveUrl(registry: string, url: string): string {
    return new URL(url, this.baseUrl(registry)).toString();
  }

  private host(registry: string): HostState {
    let state = this.hosts.get(registry);
    if (!state) {
      state = { tokens: new Map(), secrets: new Set() };
      this.hosts.set(registry, state);
    }
    return state;
  }

  /** Credentials for the registry (looked up once). */
  credentials(registry: string): Promise<RegistryCredentials | undefined> {
    const state = this.host(registry);
    state.credentials ??= this.keychain.resolve(registry).then(
      (credentials) => {
        for (const secret of credentials ? credentialSecrets(credentials) : []) state.secrets.add(secret);
        return credentials;
      },
      (err: unknown) => {
        state.credentials = undefined;
        throw err;
      },
    );
    return state.credentials;
  }

  async hasCredentials(registry: string): Promise<boolean> {
    return (await this.credentials(registry).catch(() => undefined)) !== undefined;
  }

  /** Context for error messages about a request to `registry`. */
  async errorContext(
    registry: string,
    what: string,
    method: string,
    url: string,
    repository?: string,
  ): Promise<ErrorContext> {
    return {
      what,
      method,
      url: this.resolveUrl(registry, url),
      registry,
      ...(repository === undefined ? {} : { repository }),
      hadCredentials: await this.hasCredentials(registry),
      secrets: [...this.host(registry).secrets],
    };
  }

  /** The error for an unexpected answer to a request about `repo` (`what` we were doing). */
  async repositoryError(
    res: Dispatcher.ResponseData,
    repo: RepositoryRef,
    what: string,
    method: string,
    url: string,
  ): Promise<RegistryError> {
    return responseError(res, await this.errorContext(repo.registry, what, method, url, repo.repository));
  }

  /** One raw request through our dispatcher; socket failures become RegistryErrors (status undefined). */
  private async raw(
    registry: string,
    method: string,
    url: string,
    headers: Record<string, string>,
    body: RequestBody,
    signal: AbortSignal | undefined,
    answerWithinMs?: number,
  ): Promise<Dispatcher.ResponseData> {
    // chosen before the body is opened: a proxy address cog cannot use fails here as itself
    const dispatcher = this.dispatchers.for(url);
    const stream = typeof body === 'function' ? body() : body;
    try {
      return await untilAborted(
        signal,
        () => (this.abandoned = true),
        dispatchRequest(dispatcher, url, {
          ...(answerWithinMs === undefined ? {} : { headersTimeout: answerWithinMs }),
          method: method as Dispatcher.HttpMethod,
          headers: { 'user-agent': this.userAgent, ...headers },
          ...(stream === undefined ? {} : { body: stream }),
          ...(signal ? { signal } : {}),
          // undici closes the connection after every HEAD, in case a server sends a body with it; a push
          // asks HEAD for every blob, so each blob cost a new connection (510 connects for 500 blobs).
          // Registries answer HEAD as HTTP says, and Go's client (crane, docker) keeps these connections.
          ...(method === 'HEAD' ? { reset: false } : {}),
        }),
      );
    } catch (err) {
      if (stream && typeof stream === 'object' && 'destroy' in stream) stream.destroy();
      if (signal?.aborted) throw signal.reason ?? err;
      const proxy = this.dispatchers.proxyOf(url);
      if (proxy) throwProxyRefusal(err, proxy, registry, method, url, answerWithinMs);
      if (isAbort(err)) throw err;
      const code = errorCode(err);
      if (code === 'UND_ERR_HEADERS_TIMEOUT')
        throw new RegistryError(
          `${registry} did not answer ${method} ${redactUrl(url)}${answerWithinMs === undefined ? '' : ` within ${answerWithinMs / 1000} s`}`,
          {
            status: undefined,
            method,
            url,
            cause: err,
            hint: `${registry} takes connections but does not answer: check that the address is a registry's, and that the registry is healthy`,
          },
        );
      const via = proxy ? ` through the proxy ${describeProxy(proxy)}` : '';
      throw new RegistryError(
        `cannot reach ${registry}${via}: ${method} ${redactUrl(url)} failed (${code})`,
        {
          status: undefined,
          method,
          url,
          cause: err,
          hint:
            tlsTrustHint(code) ??
            (proxy
              ? `check the proxy ${proxyVariable(new URL(url))} names, or list ${apiHost(registry)} in NO_PROXY to connect directly`
              : `check the registry address and your network${
                  url.startsWith('https:')
                    ? '; for a plain-HTTP registry add it to COG_INSECURE_REGISTRIES'
                    : ''
                }`),
        },
      );
    }
  }

  /**
   * GET /v2/, which carries no credentials, in the order the registry's host allows: a remote registry
   * over HTTPS, and an insecure one over plain HTTP when HTTPS fails to connect (refused, or no TLS
   * there); a registry on this machine over plain HTTP first, then HTTPS when that fails or answers 400
   * (what a TLS port says to plain HTTP): local registries mostly speak plain HTTP, and trying TLS
   * first cost every command the trust store's set-up and a failed handshake (~60 ms here). The first
   * scheme that answers is fixed for the requests with credentials after it.
   */
  private async pingRequest(registry: string, signal: AbortSignal | undefined) {
    const host = apiHost(registry);
    const schemes = !this.mayUseHttp(registry)
      ? (['https'] as const)
      : isLoopbackHost(host) || isLoopbackHost(registry)
        ? (['http', 'https'] as const)
        : (['https', 'http'] as const);
    for (let i = 0; ; i++) {
      const scheme = schemes[i]!;
      const last = i === schemes.length - 1;
      const url = `${scheme}://${host}/v2/`;
      try {
        const res = await this.raw(registry, 'GET', url, {}, undefined, signal, this.pingAnswerMs);
        if (scheme === 'http' && !last && res.statusCode === 400) {
          await res.body.dump();
          continue;
        }
        this.host(registry).scheme = scheme;
        return { res, url };
      } catch (err) {
        // a registry that speaks TLS with a certificate we do not trust is not a plain-HTTP registry:
        // falling back would only hide the certificate problem behind an HTTP error
        // (one that took the connection and said nothing is there: the other scheme would not help)
        const unreachable = isConnectionFailure(err) && tlsTrustHint(errorCode(err.cause)) === undefined;
        if (!unreachable || signal?.aborted) throw err;
        if (last) {
          // (through a proxy, the error names the proxy: most often it is what could not be reached)
          if (schemes.length === 1 || this.dispatchers.proxyOf(url)) throw err;
          // both schemes were tried: the insecure-registry hint of a single HTTPS failure does not apply
          throw new RegistryError(
            `cannot reach ${registry} over plain HTTP or HTTPS: GET ${host}/v2/ failed (${errorCode(err.cause)})`,
            {
              status: undefined,
              method: 'GET',
              url,
              cause: err.cause,
              hint: 'check the registry address, and that the registry is running and listening there',
            },
          );
        }
      }
    }
  }

  /** GET /v2/: which challenge the registry sets, if any. Cached per registry; failures are not. */
  private ping(
    registry: string,
    signal: AbortSignal | undefined,
    retryable?: (err: unknown) => boolean,
  ): Promise<Challenge | undefined> {
    const state = this.host(registry);
    state.ping ??= withRetry(
      async () => {
        const { res, url } = await this.pingRequest(registry, signal);
        if (res.statusCode === 401) {
          await res.body.dump();
          const challenge = pickChallenge(headerValue(res.headers, 'www-authenticate'));
          if (!challenge)
            throw new CogError(`${registry} asks for authentication with a scheme cog-ts does not speak`, {
              hint: 'cog-ts supports Bearer token and Basic authentication',
            });
          return challenge;
        }
        if (res.statusCode >= 200 && res.statusCode < 300) {
          await res.body.dump();
          return undefined;
        }
        const error = await responseError(
          res,
          await this.errorContext(registry, `checking registry ${registry}`, 'GET', url),
        );
        // the ping names no repository: a 404 means no registry API there, not a missing repository
        if (res.statusCode === 404)
          throw new RegistryError(`${registry} does not serve the registry API: ${error.message}`, {
            status: 404,
            method: 'GET',
            url,
            codes: error.codes,
            said: error.said,
            hint: `check the registry address (host[:port]): something other than a registry answered at ${registry}`,
          });
        throw error;
      },
      // a registry that does not answer its ping in three tries (about 3 s) is down or mistyped
      {
        policy: { ...this.retry, attempts: Math.min(this.retry.attempts, pingAttempts) },
        signal,
        ...(retryable ? { retryable } : {}),
      },
    ).catch((err: unknown) => {
      state.ping = undefined;
      throw err;
    });
    return state.ping;
  }

  /**
   * The registry's /v2/ ping on its own, as every request starts with it (its tries and its time limit
   * for an answer): resolves when the registry answers as a registry (a 401 asking for credentials is
   * an answer; none are sent), rejects with the ping's error otherwise. `retryable` narrows which
   * failures are tried again (e.g. not one at the connection, for a check that only warns of it).
   */
  async checkAnswers(
    registry: string,
    signal?: AbortSignal,
    retryable?: (err: unknown) => boolean,
  ): Promise<void> {
    await this.ping(registry, signal, retryable);
  }

  /**
   * Before a push: whether `repo` takes one with the credentials we have, asked without sending a blob.
   * An open registry (no challenge) is not asked. Basic: GET /v2/ with the credentials. Bearer: a token
   * for pull,push, whose grants are read when it lists them (a JWT's `access`); a token that lists no
   * push for the repository is refused here, as the registry would refuse the upload's first request.
   * Rejects with a RegistryError: 401 (no credentials, or refused ones), 403 (no push granted).
   */
  async checkPushAccess(repo: RepositoryRef, signal?: AbortSignal): Promise<void> {
    const challenge = await this.ping(repo.registry, signal);
    if (!challenge) return;
    const scopes = pushScopes(repo.repository);
    const what = `checking that ${repo.registry}/${repo.repository} can be pushed to`;
    if (challenge.scheme === 'bearer') {
      const token = await this.token(repo.registry, challenge, scopes, signal);
      const granted = grantedActions(token, repo.repository);
      if (granted === undefined || grantsPush(granted)) return;
      const context = await this.errorContext(repo.registry, what, 'GET', challenge.params.realm ?? '/v2/');
      throw new RegistryError(
        `${repo.registry} grants ${granted.length ? granted.join(',') : 'no access'}, not push, on ${repo.repository} to ${context.hadCredentials ? 'these credentials' : 'anonymous users'}`,
        { status: context.hadCredentials ? 403 : 401, method: 'GET', url: context.url, codes: ['DENIED'] },
      );
    }
    const res = await this.send({ registry: repo.registry, method: 'GET', url: '/v2/', scopes, signal });
    if (res.statusCode >= 200 && res.statusCode < 300) {
      await res.body.dump();
      return;
    }
    throw await this.repositoryError(res, repo, what, 'GET', '/v2/');
  }

  /**
   * A bearer token from the token service `realm` for `scopes` of `registry`, with this client's
   * credentials for it (anonymous without): what buildkitd asks the build session for when it leaves
   * token fetching to the client (FetchToken). The token is remembered for masking like our own.
   */
  async issueToken(
    registry: string,
    service: { readonly realm: string; readonly service?: string | undefined },
    scopes: readonly string[],
    signal?: AbortSignal,
  ): Promise<IssuedToken> {
    const params: Record<string, string> = { realm: service.realm };
    if (service.service) params.service = service.service;
    const token = await this.fetchToken(registry, { scheme: 'bearer', params }, scopes, signal);
    return {
      token: token.value,
      expiresIn: token.expiresIn,
      issuedAt: Math.floor(token.issuedAt / 1000),
    };
  }

  private async fetchToken(
    registry: string,
    challenge: Challenge,
    scopes: readonly string[],
    signal: AbortSignal | undefined,
  ): Promise<Token> {
    const realm = challenge.params.realm;
    if (!realm)
      throw new CogError(`${registry} asked for a bearer token but named no token service (realm)`, {
        hint: 'the registry is misconfigured; contact its operator',
      });
    const creds = await this.credentials(registry);
    const service = challenge.params.service;
    let url: URL;
    try {
      // a realm is an absolute URL; a path (some registries send one) is on the registry's own host
      url = new URL(realm, this.baseUrl(registry));
    } catch {
      throw new CogError(`${registry} named a token service that is not a URL: ${JSON.stringify(realm)}`, {
        hint: 'the registry is misconfigured; contact its operator',
      });
    }
    // the OAuth2 form exchange for an identity (refresh) token; token servers without it answer the POST
    // 404 (or 405), and the GET every token server has takes the token as the Basic password
    const identity = creds !== undefined && creds.username === '';
    const get = (): TokenRequest => {
      const target = new URL(url);
      if (service) target.searchParams.set('service', service);
      for (const scope of scopes) target.searchParams.append('scope', scope);
      const headers: Record<string, string> = { accept: 'application/json' };
      if (creds)
        headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.secret}`).toString('base64')}`;
      return { method: 'GET', url: target.toString(), headers, body: undefined };
    };
    const post = (secret: string): TokenRequest => {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: secret,
        client_id: this.userAgent,
      });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      return {
        method: 'POST',
        url: url.toString(),
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      };
    };
    const host = this.host(registry);
    let request = identity && !host.noOAuthPost ? post(creds.secret) : get();
    return withRetry(
      async () => {
        const started = Date.now();
        const send = (r: TokenRequest) => this.raw(registry, r.method, r.url, r.headers, r.body, signal);
        let res = await send(request);
        if (request.method === 'POST' && (res.statusCode === 404 || res.statusCode === 405)) {
          await res.body.dump();
          host.noOAuthPost = true;
          request = get();
          res = await send(request);
        }
        if (res.statusCode !== 200)
          throw await responseError(
            res,
            await this.errorContext(registry, `getting a token for ${registry}`, request.method, request.url),
          );
        const text = await res.body.text();
        let json: { token?: unknown; access_token?: unknown; expires_in?: unknown };
        try {
          json = JSON.parse(text) as typeof json;
        } catch {
          throw new CogError(
            `the token service of ${registry} (${redactUrl(request.url)}) answered with something that is not JSON (${headerValue(res.headers, 'content-type') ?? 'no content type'})`,
            {
              hint: 'a proxy or captive portal may be answering instead of the registry; check the network and the registry address',
            },
          );
        }
        const value =
          typeof json.token === 'string' && json.token
            ? json.token
            : typeof json.access_token === 'string'
              ? json.access_token
              : '';
        if (!value)
          throw new CogError(
            `the token service of ${registry} (${redactUrl(realm)}) answered without a token`,
            {
              hint: 'the registry is misconfigured; contact its operator',
            },
          );
        host.secrets.add(value);
        const expiresIn = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60;
        return {
          value,
          expiresAt: started + expiresIn * 1000 - Math.min(tokenSlackMs, (expiresIn * 1000) / 4),
          expiresIn,
          issuedAt: started,
        };
      },
      { policy: this.retry, signal },
    );
  }

  /**
   * A cached bearer token for these scopes, fetched when missing, expired, or the one the registry
   * `refused`. A token fetched in place of a refused one also replaces the one cached for `alsoFor`
   * (scopes it covers): the requests that use that key would otherwise keep sending the refused token.
   * Requests refused together (concurrent uploads with one stale token) share one new token.
   */
  private async token(
    registry: string,
    challenge: Challenge,
    scopes: readonly string[],
    signal: AbortSignal | undefined,
    refused?: string,
    alsoFor?: readonly string[],
  ): Promise<string> {
    const key = scopeKey(scopes);
    const tokens = this.host(registry).tokens;
    const cached = tokens.get(key);
    if (cached) {
      const token = await cached.catch(() => undefined);
      if (token && token.value !== refused && token.expiresAt > Date.now()) return token.value;
    }
    const pending = this.fetchToken(registry, challenge, scopes, signal);
    const keys = alsoFor ? [key, scopeKey(alsoFor)] : [key];
    for (const k of keys) tokens.set(k, pending);
    pending.catch(() => {
      for (const k of keys) if (tokens.get(k) === pending) tokens.delete(k);
    });
    return (await pending).value;
  }

  private async authorization(
    registry: string,
    challenge: Challenge | undefined,
    scopes: readonly string[],
    signal: AbortSignal | undefined,
    refused?: string,
    alsoFor?: readonly string[],
  ): Promise<string | undefined> {
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      const creds = await this.credentials(registry);
      return creds
        ? `Basic ${Buffer.from(`${creds.username}:${creds.secret}`).toString('base64')}`
        : undefined;
    }
    return `Bearer ${await this.token(registry, challenge, scopes, signal, refused, alsoFor)}`;
  }

  /**
   * Sends one request with authorisation. A 401 from a bearer registry is answered once more with a
   * fresh token covering the scopes the new challenge names (expired or too-narrow tokens).
   */
  async send(req: RegistryRequest): Promise<Dispatcher.ResponseData> {
    // the ping comes first: it learns the registry's scheme, which relative URLs resolve against
    const pinged = await this.ping(req.registry, req.signal);
    const url = this.resolveUrl(req.registry, req.url);
    const sameOrigin = new URL(url).origin === new URL(this.baseUrl(req.registry)).origin;
    const challenge = sameOrigin ? pinged : undefined;
    const headers = { ...(req.headers ?? {}) };
    const auth = await this.authorization(req.registry, challenge, req.scopes, req.signal);
    if (auth) headers.authorization = auth;
    const res = await this.raw(req.registry, req.method, url, headers, req.body, req.signal);
    if (res.statusCode !== 401 || challenge?.scheme !== 'bearer') return res;
    const replayable = typeof req.body !== 'object' || Buffer.isBuffer(req.body);
    if (!replayable) return res;
    const again = pickChallenge(headerValue(res.headers, 'www-authenticate'));
    const scope = again?.scheme === 'bearer' ? again.params.scope : undefined;
    // the scopes the challenge names (space-separated) that the request's do not already cover
    const known = req.scopes.map(normalScope);
    const missing = (scope ?? '').split(' ').filter((s) => s && !known.includes(normalScope(s)));
    const scopes = missing.length ? [...req.scopes, ...missing] : req.scopes;
    await res.body.dump();
    const renewed = await this.authorization(
      req.registry,
      again ?? challenge,
      scopes,
      req.signal,
      auth?.replace(/^Bearer /, ''),
      req.scopes,
    );
    if (renewed) headers.authorization = renewed;
    return this.raw(req.registry, req.method, url, headers, req.body, req.signal);
  }
}
