/**
 * Changes to V8's flags while the process runs. V8 stamps compiled-code caches with a hash of its
 * flags and refuses a cache made under other flags: Node's own cache of its built-in modules and
 * the CLI's code cache (cli/code-cache.ts) alike. So a cache that is to be saved must be saved before
 * a flag changes, and a flag change is announced here first.
 *
 * The state is the process's, as V8's flags are, and lives on globalThis: the entry bundle and the
 * CLI bundle (dist/cog.mjs, dist/cog-main.cjs) each carry a copy of this module.
 */
import { setFlagsFromString } from 'node:v8';

interface FlagState {
  changed: boolean;
  readonly beforeChange: (() => void)[];
}

const stateKey = Symbol.for('cog-ts.v8-flags');

function state(): FlagState {
  const global = globalThis as { [stateKey]?: FlagState };
  return (global[stateKey] ??= { changed: false, beforeChange: [] });
}

/** Runs `hook` once, right before the first flag change (never when none happens). */
export function beforeV8FlagChange(hook: () => void): void {
  if (!state().changed) state().beforeChange.push(hook);
}

/** Whether a flag was changed in this process (caches made from now on carry other flags). */
export function v8FlagsChanged(): boolean {
  return state().changed;
}

/** Sets a V8 flag, after the hooks waiting for a change have run. */
export function setV8Flag(flag: string): void {
  const current = state();
  for (const hook of current.beforeChange.splice(0)) hook();
  current.changed = true;
  setFlagsFromString(flag);
}
