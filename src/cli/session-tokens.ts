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
  let loaded: Promise<{ client: RegistryClient; isConnectionFailure: (err: unknown) => boolean }> | undefined;
  const registryClient = () =>
    (loaded ??= import('../registry/client.js').then(({ RegistryClient, isConnectionFailure }) => ({
      client: new RegistryClient({ env, keychain }),
      isConnectionFailure,
    })));
  return {
    source: {
      // the registry's /v2/ ping, tried once: only a failure to connect (not an error answer) says no
      reaches: async (host, signal) => {
        const { client, isConnectionFailure } = await registryClient();
        return client
          .checkAnswers(host, signal, () => false)
          .then(
            () => true,
            (err: unknown) => !isConnectionFailure(err),
          );
      },
      fetch: async (request, signal) => {
        const { realm, service } = request;
        const { client } = await registryClient();
        return client.issueToken(request.host, { realm, service }, request.scopes, signal);
      },
    },
    close: async () => {
      if (loaded) await (await loaded).client.close();
    },
  };
}
