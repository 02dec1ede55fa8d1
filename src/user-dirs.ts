/** The per-user base directories of the XDG spec: `$XDG_*_HOME` when set, else its default under $HOME. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export type UserDirKind = 'cache' | 'data' | 'state';

export function userDir(env: Readonly<Record<string, string | undefined>>, kind: UserDirKind): string {
  const set = { cache: env.XDG_CACHE_HOME, data: env.XDG_DATA_HOME, state: env.XDG_STATE_HOME }[kind];
  const fallback = { cache: ['.cache'], data: ['.local', 'share'], state: ['.local', 'state'] }[kind];
  return set || join(env.HOME || homedir(), ...fallback);
}

/**
 * The variable `userDir` took the directory from, as `XDG_DATA_HOME=/d` for messages; undefined when
 * it fell back to $HOME.
 */
export function userDirSetting(
  env: Readonly<Record<string, string | undefined>>,
  kind: UserDirKind,
): string | undefined {
  const name = { cache: 'XDG_CACHE_HOME', data: 'XDG_DATA_HOME', state: 'XDG_STATE_HOME' }[kind];
  return env[name] ? `${name}=${env[name]}` : undefined;
}
