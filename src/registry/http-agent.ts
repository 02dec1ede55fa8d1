/**
 * The HTTP layer of the registry client: undici's Agent and its request API (and, for HTTP(S)_PROXY,
 * its ProxyAgent: ~3 ms more), loaded from their own modules. undici's index also loads fetch,
 * WebSocket, EventSource, the cache stores and the mock agent, none of which we use: ~120 ms of every
 * `cog push`/`inspect`/`login` on this machine (about 45 ms with these modules). The types are
 * undici's own (undici-parts.d.ts).
 */
import type { SecureContext } from 'node:tls';
import type { Dispatcher, buildConnector as BuildConnector } from 'undici';
import Agent from 'undici/lib/dispatcher/agent.js';
import ProxyAgent from 'undici/lib/dispatcher/proxy-agent.js';
import Pool from 'undici/lib/dispatcher/pool.js';
import apiConnect from 'undici/lib/api/api-connect.js';
import buildConnector from 'undici/lib/core/connect.js';
import apiRequest from 'undici/lib/api/api-request.js';
import { setV8Flag } from '../v8-flags.js';
import { type ProxySettings, proxyFor } from './proxy.js';

// undici parses HTTP with llhttp compiled to WebAssembly, on the first connection. V8 compiles it
// quickly (Liftoff), then optimises it again on a background thread, and the process waits for that
// job before it can exit: ~150 ms at the end of every registry command here, for a parser that reads
// response headers and passes bodies through. Liftoff's code is enough.
setV8Flag('--liftoff-only');

export { Agent };

/** One request through `dispatcher` to an absolute URL; what undici's `request(url, { dispatcher })` does. */
export function dispatchRequest(
  dispatcher: Dispatcher,
  url: string,
  options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>,
): Promise<Dispatcher.ResponseData> {
  const parsed = new URL(url);
  return apiRequest.call(dispatcher, {
    ...options,
    origin: parsed.origin,
    path: `${parsed.pathname}${parsed.search}`,
  });
}

/**
 * The Agent's connector, setting up TLS only for the first HTTPS connection: the trust store (Node's
 * roots plus the extra CAs, ~60 ms to build in a CLI run here) is made once, then, and a registry
 * spoken to over plain HTTP (loopback, the insecure list) never pays for it.
 */
export function connectorWithLazyTls(
  secureContext: () => SecureContext | undefined,
): BuildConnector.connector {
  let plain: BuildConnector.connector | undefined;
  let tls: BuildConnector.connector | undefined;
  return (options, callback) => {
    if (options.protocol !== 'https:') {
      plain ??= buildConnector({});
      plain(options, callback);
      return;
    }
    if (!tls) {
      const context = secureContext();
      tls = buildConnector(context ? { secureContext: context } : {});
    }
    tls(options, callback);
  };
}

export interface RegistryDispatchersOptions {
  /** connections per origin (and per proxy) */
  readonly connections?: number;
  readonly keepAliveTimeout?: number;
  /** the trust for HTTPS (Node's roots plus extra CAs), asked for on the first HTTPS connection */
  readonly secureContext: () => SecureContext | undefined;
  /** HTTP(S)_PROXY and NO_PROXY (proxy.ts); undefined: every request goes direct */
  readonly proxies: ProxySettings | undefined;
  /** how long a proxy may take to answer a CONNECT (default 10 s; undici's own limit is 300 s) */
  readonly proxyAnswerMs?: number;
}

/** A proxy took the connection and did not answer the CONNECT in time. */
export class ProxyNoAnswerError extends Error {
  readonly code = 'COG_PROXY_NO_ANSWER';
  constructor(
    readonly answerMs: number,
    options: { readonly cause: unknown },
  ) {
    super(`the proxy did not answer CONNECT within ${answerMs / 1000} s`, options);
  }
}

/**
 * The dispatchers registry requests go through: one Agent for direct connections and, for the URLs
 * HTTP(S)_PROXY sends through a proxy, a ProxyAgent per proxy (made on first use). An https request
 * goes through the proxy in a CONNECT tunnel, with the same trust for TLS to the registry inside it as
 * a direct connection's; a plain-HTTP one, through an http:// proxy, is sent to the proxy with its
 * absolute URL (`PATCH http://host:port/v2/…`), as Go's client (docker, crane, buildkitd) and curl do:
 * proxies commonly refuse CONNECT to ports other than 443 (squid's default configuration does).
 */
export class RegistryDispatchers {
  private readonly direct: Dispatcher;
  private readonly viaProxy = new Map<string, Dispatcher>();
  private readonly secureContext: () => SecureContext | undefined;

  constructor(private readonly options: RegistryDispatchersOptions) {
    let made: { context: SecureContext | undefined } | undefined;
    this.secureContext = () => (made ??= { context: options.secureContext() }).context;
    this.direct = new Agent({
      ...this.pooling(),
      connect: connectorWithLazyTls(this.secureContext),
    });
  }

  private pooling() {
    return {
      connections: this.options.connections ?? 8,
      pipelining: 1,
      allowH2: false,
      keepAliveTimeout: this.options.keepAliveTimeout ?? 30_000,
    };
  }

  /** The proxy a request to `url` goes through, if any. */
  proxyOf(url: string): URL | undefined {
    return this.options.proxies && proxyFor(new URL(url), this.options.proxies);
  }

  /** The dispatcher for a request to `url`. */
  for(url: string): Dispatcher {
    const proxy = this.proxyOf(url);
    if (!proxy) return this.direct;
    let agent = this.viaProxy.get(proxy.href);
    if (!agent) {
      const context = this.secureContext();
      const tls = context ? { secureContext: context } : undefined;
      agent = new ProxyAgent({
        ...this.pooling(),
        uri: proxy.href,
        proxyTunnel: false,
        // the connections to the proxy carrying plain-HTTP requests are pooled as direct ones: undici
        // makes them with its defaults otherwise
        factory: (origin, options) => new Pool(origin, { ...this.pooling(), ...options }),
        // the connection to the proxy opens tunnels with CONNECT: undici's index puts that method on
        // every dispatcher, the modules loaded here do not
        // (with a limit of our own on the proxy's answer, named as the proxy's)
        clientFactory: (origin, options) => {
          const pool = new Pool(origin, options);
          const answerMs = this.options.proxyAnswerMs ?? 10_000;
          const connect = (params: Dispatcher.ConnectOptions) =>
            apiConnect.call(pool, { ...params, headersTimeout: answerMs }).catch((err: unknown) => {
              const code = (err as { code?: unknown } | null)?.code;
              throw code === 'UND_ERR_HEADERS_TIMEOUT'
                ? new ProxyNoAnswerError(answerMs, { cause: err })
                : err;
            });
          return Object.assign(pool, { connect });
        },
        ...(tls ? { requestTls: tls, proxyTls: tls } : {}),
      });
      this.viaProxy.set(proxy.href, agent);
    }
    return agent;
  }

  /** `now`: without waiting for the requests under way (destroyed) */
  async close(options: { readonly now?: boolean } = {}): Promise<void> {
    await Promise.all(
      [this.direct, ...this.viaProxy.values()].map((d) => (options.now ? d.destroy() : d.close())),
    );
  }
}
