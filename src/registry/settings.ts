/**
 * Environment settings for registry I/O. Each reader names the variable in its error.
 *   COG_PUSH_CONCURRENCY         blobs uploaded at once (default 5)
 *   COG_PUSH_DEFAULT_CHUNK_SIZE  bytes per PATCH when the registry states no limit (default 96 MiB)
 *   COG_PUSH_MULTIPART_THRESHOLD blobs up to this many bytes go up in one request, larger ones in
 *                                chunks (default 128 MiB; 0 chunks every blob)
 *   COG_INSECURE_REGISTRIES      comma-separated host[:port] that may fall back to plain HTTP when
 *                                HTTPS fails to connect (localhost, 127.0.0.0/8 and [::1] always may)
 *   COG_REGISTRY_USERNAME / COG_REGISTRY_PASSWORD   credentials for CI, used for every registry, ahead of
 *                                docker's config.json
 */
import { CogError } from '../errors.js';
import { isRegistryHost } from './reference.js';
import { defaultChunkSize, defaultMultipartThreshold } from './chunks.js';

function wholeNumber(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  what: string,
  min: 0 | 1 = 1,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const digits = /^\d+$/.test(raw.trim());
  const value = Number(raw.trim());
  const hint = `set ${name} to ${what}, or unset it for the default (${fallback})`;
  if (digits && !Number.isSafeInteger(value))
    throw new CogError(`${name}=${JSON.stringify(raw)} is too large`, { hint });
  if (!digits || value < min)
    throw new CogError(
      `${name}=${JSON.stringify(raw)} is not a ${min === 0 ? 'non-negative' : 'positive'} whole number`,
      { hint },
    );
  return value;
}

/** Reads every push setting, so that a bad value fails before a build rather than after it. */
export function checkPushSettings(env: NodeJS.ProcessEnv): void {
  pushConcurrency(env);
  pushChunkSize(env);
  pushMultipartThreshold(env);
}

export const defaultPushConcurrency = 5;

export function pushConcurrency(env: NodeJS.ProcessEnv): number {
  return wholeNumber(
    env,
    'COG_PUSH_CONCURRENCY',
    defaultPushConcurrency,
    'the number of parallel uploads, e.g. 5',
  );
}

export function pushChunkSize(env: NodeJS.ProcessEnv): number {
  return wholeNumber(env, 'COG_PUSH_DEFAULT_CHUNK_SIZE', defaultChunkSize, 'a size in bytes, e.g. 100663296');
}

/** Blobs up to this size go up in one request; larger ones in PATCH chunks. */
export function pushMultipartThreshold(env: NodeJS.ProcessEnv): number {
  return wholeNumber(
    env,
    'COG_PUSH_MULTIPART_THRESHOLD',
    defaultMultipartThreshold,
    'a size in bytes, e.g. 134217728 (0 uploads every blob in chunks)',
    0,
  );
}

/**
 * COG_INSECURE_REGISTRIES: host[:port] entries, comma-separated (an `http://` or `https://` written in
 * front is dropped, as a user of docker's insecure-registries may write it); anything else is refused
 * naming the entry, where it was kept and matched no registry.
 * @throws CogError
 */
export function insecureRegistries(env: NodeJS.ProcessEnv): string[] {
  return (env.COG_INSECURE_REGISTRIES ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
    .map((entry) => {
      const host = entry.replace(/^https?:\/\//, '').replace(/\/+$/, '');
      if (!isRegistryHost(host))
        throw new CogError(`COG_INSECURE_REGISTRIES: "${entry}" is not a registry's host[:port]`, {
          hint: 'list registries comma-separated as host[:port], e.g. COG_INSECURE_REGISTRIES=registry.lan:5000,10.0.0.5',
        });
      return host;
    });
}

/** Whether `host` (`host[:port]`) is this machine: localhost, 127.x.x.x or [::1]. */
export function isLoopbackHost(host: string): boolean {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** Whether `host` (`host[:port]`) may be spoken to over plain HTTP when HTTPS fails. */
export function isInsecureHost(host: string, insecure: readonly string[]): boolean {
  if (isLoopbackHost(host)) return true;
  const name = host.replace(/:\d+$/, '').toLowerCase();
  return insecure.includes(host.toLowerCase()) || insecure.includes(name);
}

/** The registry `cog login`/`cog push` talk to when none is named (and where cog-base images live). */
export const defaultReplicateHost = 'r8.im';

/** COG_REGISTRY_HOST, else r8.im. */
export function defaultRegistryHost(env: NodeJS.ProcessEnv): string {
  return env.COG_REGISTRY_HOST?.trim() || defaultReplicateHost;
}
