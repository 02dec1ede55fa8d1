/**
 * Cache keys for build secrets. BuildKit leaves a secret's content out of a step's cache key, so a step
 * that reads a rotated token (a private index password, say) would stay cached with the old one (an
 * upstream complaint since `--secret` arrived). Each secret gets a key derived from its content with
 * scrypt: the same content gives the same key on every machine (so registry caches still hit), and the
 * key is slow to guess a weak secret from, since it sits in the build graph that goes to the daemon.
 */
import { scrypt } from 'node:crypto';
import { type SecretSource, readSecret } from '../buildkit/secret-flags.js';
import { CogError } from '../errors.js';

/** Fixed, so that keys agree across machines; changing it re-runs every step with secrets once. */
const salt = 'cog-ts build secret cache key v1';
/** scrypt cost: ~16 MiB and some tens of milliseconds per secret. */
const cost = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

/** The key of one secret's content, `scrypt:` + 64 hex digits. */
export function secretContentKey(content: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    scrypt(content, salt, 32, cost, (err, key) =>
      err ? reject(err) : resolve(`scrypt:${key.toString('hex')}`),
    );
  });
}

/**
 * Keys for the secrets build.run steps mount that `--secret` provides. A secret the steps do not mount
 * is not read; one they mount that cannot be read fails here, naming the flag, before the build starts.
 */
export async function secretKeysFor(
  secrets: Readonly<Record<string, SecretSource>>,
  mounted: ReadonlySet<string>,
  env: NodeJS.ProcessEnv,
): Promise<Record<string, string>> {
  const keys: Record<string, string> = {};
  for (const [id, source] of Object.entries(secrets)) {
    if (!mounted.has(id)) continue;
    let content: Uint8Array;
    try {
      content = await readSecret(id, source, env);
    } catch (err) {
      throw new CogError(`--secret id=${id}: ${(err as Error).message}`, {
        hint: 'give the secret as id=NAME,src=FILE or id=NAME,env=VAR with a readable file or a set variable',
      });
    }
    keys[id] = await secretContentKey(content);
  }
  return keys;
}
