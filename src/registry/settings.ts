/**
 * Environment settings for registry I/O. Each reader names the variable in its error.
 *   COG_PUSH_CONCURRENCY         blobs uploaded at once (default 5)
 *   COG_PUSH_DEFAULT_CHUNK_SIZE  bytes per PATCH when the registry states no limit (default 96 MiB)
 *   COG_INSECURE_REGISTRIES      comma-separated host[:port] spoken to over plain HTTP
 *                                (localhost, 127.0.0.0/8 and [::1] always are)
 *   COG_REGISTRY_USERNAME / COG_REGISTRY_PASSWORD   credentials for CI, used for every registry, ahead of
 *                                docker's config.json
 */
import { CogError } from '../errors.js';
import { defaultChunkSize } from './chunks.js';

function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number, what: string): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < 1)
    throw new CogError(`${name}=${JSON.stringify(raw)} is not a positive whole number`, {
      hint: `set ${name} to ${what}, or unset it for the default (${fallback})`,
    });
  return value;
}

export const defaultPushConcurrency = 5;

export function pushConcurrency(env: NodeJS.ProcessEnv): number {
  return positiveInteger(
    env,
    'COG_PUSH_CONCURRENCY',
    defaultPushConcurrency,
    'the number of parallel uploads, e.g. 5',
  );
}

export function pushChunkSize(env: NodeJS.ProcessEnv): number {
  return positiveInteger(
    env,
    'COG_PUSH_DEFAULT_CHUNK_SIZE',
    defaultChunkSize,
    'a size in bytes, e.g. 100663296',
  );
}

export function insecureRegistries(env: NodeJS.ProcessEnv): string[] {
  return (env.COG_INSECURE_REGISTRIES ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

/** Whether to speak plain HTTP to `host` (`host[:port]`). */
export function isInsecureHost(host: string, insecure: readonly string[]): boolean {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  if (name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name)) return true;
  return insecure.includes(host.toLowerCase()) || insecure.includes(name);
}

/** The registry `cog login`/`cog push` talk to when none is named (and where cog-base images live). */
export const defaultReplicateHost = 'r8.im';

/** COG_REGISTRY_HOST, else r8.im. */
export function defaultRegistryHost(env: NodeJS.ProcessEnv): string {
  return env.COG_REGISTRY_HOST?.trim() || defaultReplicateHost;
}
