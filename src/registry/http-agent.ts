/**
 * The HTTP layer of the registry client: undici's Agent and its request API, loaded from their own
 * modules. undici's index also loads fetch, WebSocket, EventSource, the cache stores and the mock
 * agent, none of which we use: ~120 ms of every `cog push`/`inspect`/`login` on this machine (about
 * 45 ms with these two modules). The types are undici's own (undici-parts.d.ts).
 */
import type { SecureContext } from 'node:tls';
import type { Dispatcher, buildConnector as BuildConnector } from 'undici';
import Agent from 'undici/lib/dispatcher/agent.js';
import buildConnector from 'undici/lib/core/connect.js';
import apiRequest from 'undici/lib/api/api-request.js';
import { setV8Flag } from '../v8-flags.js';

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
