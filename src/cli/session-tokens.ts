/**
 * The registry tokens a build's session fetches for buildkitd (the session is its token authority, see
 * buildkit/auth.ts). One registry client serves the session, made on the first request: its module
 * loads undici and changes a V8 flag, which only builds that meet a Bearer registry should pay for.
 */
import type { RegistryTokenSource } from '../buildkit/auth.js';
import type { Keychain } from '../registry/keychain.js';
import type { RegistryClient } from '../registry/client.js';

export interface SessionTokens {
  readonly source: RegistryTokenSource;
  /** closes the client's connections, if it was made */
  close(): Promise<void>;
}

export function sessionTokens(env: NodeJS.ProcessEnv, keychain: Keychain): SessionTokens {
  let client: Promise<RegistryClient> | undefined;
  return {
    source: async (request, signal) => {
      client ??= import('../registry/client.js').then(
        ({ RegistryClient }) => new RegistryClient({ env, keychain }),
      );
      const { realm, service } = request;
      return (await client).issueToken(request.host, { realm, service }, request.scopes, signal);
    },
    close: async () => {
      if (client) await (await client).close();
    },
  };
}
