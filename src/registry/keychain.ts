/**
 * Where registry credentials come from. A Keychain answers for a registry host; several compose, the
 * first answer wins. The default is CI variables first, then docker's config.json (and its helpers).
 */
import {
  type CredentialOptions,
  type RegistryCredentials,
  credentialResolver,
  normalizeRegistryHost,
} from '../buildkit/docker-config.js';

export type { RegistryCredentials };

export interface Keychain {
  /** credentials for `host[:port]` (`docker.io` for Docker Hub); undefined means anonymous */
  resolve(host: string): Promise<RegistryCredentials | undefined>;
}

export const anonymousKeychain: Keychain = { resolve: () => Promise.resolve(undefined) };

/** COG_REGISTRY_USERNAME + COG_REGISTRY_PASSWORD, for every registry (meant for CI). */
export function envKeychain(env: NodeJS.ProcessEnv): Keychain {
  const username = env.COG_REGISTRY_USERNAME;
  const secret = env.COG_REGISTRY_PASSWORD;
  const creds = username && secret ? { username, secret } : undefined;
  return { resolve: () => Promise.resolve(creds) };
}

/**
 * COG_REGISTRY_USERNAME + COG_REGISTRY_PASSWORD for `hosts` only: what a build's session hands
 * buildkitd, which also asks for the base images' registries (they must not get a push account).
 */
export function envKeychainFor(env: NodeJS.ProcessEnv, hosts: readonly string[]): Keychain {
  const names = new Set(hosts.map((h) => normalizeRegistryHost(h)));
  const fromEnv = envKeychain(env);
  return {
    resolve: (host) =>
      names.has(normalizeRegistryHost(host)) ? fromEnv.resolve(host) : Promise.resolve(undefined),
  };
}

/**
 * The credentials a build's session hands buildkitd (and that the check before a push build asks
 * with): COG_REGISTRY_USERNAME/PASSWORD for `envHosts` (the push destination) only, then config.json.
 */
export function sessionKeychain(envHosts: readonly string[], options: CredentialOptions = {}): Keychain {
  return multiKeychain(envKeychainFor(options.env ?? process.env, envHosts), dockerKeychain(options));
}

/** docker's config.json: credHelpers, credsStore, auths (read once, cached per host). */
export function dockerKeychain(options: CredentialOptions = {}): Keychain {
  const resolve = credentialResolver(options);
  return { resolve };
}

export function multiKeychain(...keychains: readonly Keychain[]): Keychain {
  return {
    async resolve(host) {
      for (const k of keychains) {
        const found = await k.resolve(host);
        if (found) return found;
      }
      return undefined;
    },
  };
}

export function defaultKeychain(env: NodeJS.ProcessEnv = process.env): Keychain {
  return multiKeychain(envKeychain(env), dockerKeychain({ env }));
}
