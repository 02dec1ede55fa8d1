/**
 * The CLI's entry point, bundled as dist/cog.mjs. `cog build` first tries its up-to-date check
 * (cli/up-to-date.ts), which loads a handful of small modules, then, when the command has a source
 * record, the source-only answer (cli/source-entry.ts, dist/cog-source.cjs: no yargs, no BuildKit
 * client); only when the build must run on buildkitd, and for every other command, is the whole CLI
 * (yargs, the BuildKit client, the planner) loaded: in the bundled CLI from dist/cog-main.cjs with a V8
 * code cache (cli/code-cache.ts), else from its modules. (A declined source-only push has loaded the
 * registry client, whose V8 flag makes the whole CLI's code cache unusable for that run: ~0.1 s on a
 * build that then runs on buildkitd.)
 */
import type * as MainModule from './main.js';
import type * as SourceEntryModule from './source-entry.js';
import { processIo } from './process-io.js';

// defined by scripts/bundle.mjs (see cogBuildId in up-to-date.ts); declared here too, not imported: a
// module both bundles share becomes a chunk of its own, one more file every command loads
declare const COG_BUILD_ID: string | undefined;

type Cli = typeof MainModule;
type SourceEntry = typeof SourceEntryModule;

/**
 * One of the CommonJS bundles next to this file, with its V8 code cache (saved when the process exits)
 * under `variant`.
 */
async function loadBundle(file: string, env: NodeJS.ProcessEnv, variant: string): Promise<unknown> {
  const [
    { loadWithCodeCache },
    { userDir },
    { beforeV8FlagChange, v8FlagsChanged },
    { fileURLToPath },
    { join },
  ] = await Promise.all([
    import('./code-cache.js'),
    import('../user-dirs.js'),
    import('../v8-flags.js'),
    import('node:url'),
    import('node:path'),
  ]);
  const bundle = fileURLToPath(new URL(`./${file}`, import.meta.url));
  const cacheDir = join(userDir(env, 'cache'), 'cog-ts', 'code-cache');
  const loaded = loadWithCodeCache(bundle, cacheDir, COG_BUILD_ID ?? '', variant);
  // saved when the command is done, so that the functions it ran are in it: at exit, however the
  // command ends (yargs' --version and --help exit themselves), or before a V8 flag changes (the
  // registry client sets one), after which V8 would refuse it; never when a flag changed before
  // the load (the up-to-date check may load the registry client)
  if (!loaded.fromCache && !v8FlagsChanged()) {
    // the hook runs before any flag change, so by exit the cache is either saved or still valid
    let saved = false;
    const save = () => {
      if (saved) return;
      saved = true;
      loaded.save();
    };
    beforeV8FlagChange(save);
    process.once('exit', save);
  }
  return loaded.exports;
}

/** The CLI's main module: from its bundle, else (unbundled) from its modules. */
async function loadCli(env: NodeJS.ProcessEnv, command: string | undefined): Promise<Cli> {
  if (typeof COG_BUILD_ID === 'string') {
    const variant = command && /^[a-z][a-z-]{0,30}$/.test(command) ? command : 'other';
    return (await loadBundle('cog-main.cjs', env, variant)) as Cli;
  }
  // a specifier the bundler leaves alone: the bundled CLI never comes here, and must not carry main.js
  const modules = './main.js';
  return (await import(modules)) as Cli;
}

/** `cog build`'s source-only answer (cli/source-entry.ts): its bundle, else its module. */
async function loadSourceEntry(env: NodeJS.ProcessEnv): Promise<SourceEntry> {
  if (typeof COG_BUILD_ID === 'string')
    return (await loadBundle('cog-source.cjs', env, 'build-source')) as SourceEntry;
  const module = './source-entry.js';
  return (await import(module)) as SourceEntry;
}

/** Whether the progress mode `cog build ARGV` asks for is one (checked as the CLI will check it). */
async function progressIsValid(argv: readonly string[]): Promise<boolean> {
  const [{ progressFlag }, { resolveProgressMode }] = await Promise.all([
    import('../build/build-record.js'),
    import('../progress/mode.js'),
  ]);
  try {
    resolveProgressMode(progressFlag(argv), process.env, false);
    return true;
  } catch {
    return false;
  }
}

/** Runs the CLI with the given arguments and resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  // a --progress (or BUILDKIT_PROGRESS) that is no mode is the full CLI's to refuse: not answered early
  if (argv[0] === 'build' && (await progressIsValid(argv.slice(1)))) {
    const { hasSourceRecord, upToDateBuild } = await import('./up-to-date.js');
    if (await upToDateBuild(argv.slice(1), processIo(), process.cwd())) return 0;
    // only when the build has a source record (what the answer needs) is its bundle loaded
    if (hasSourceRecord(argv.slice(1), process.cwd(), process.env)) {
      const { sourceOnlyBuild } = await loadSourceEntry(process.env);
      try {
        if (await sourceOnlyBuild(argv.slice(1), processIo(), process.cwd())) return 0;
      } catch (err) {
        // Ctrl-C (InterruptedError, from the bundle's own copy of the class): said as the CLI says errors
        const { message, exitCode } = err as { message?: string; exitCode?: number };
        process.stderr.write(`cog: error: ${message ?? String(err)}\n`);
        return exitCode ?? 1;
      }
    }
  }
  const cli = await loadCli(process.env, argv[0]);
  return cli.main(argv);
}
