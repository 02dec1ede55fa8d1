/**
 * The CLI's entry point, bundled as dist/cog.mjs. `cog build` first tries its up-to-date check
 * (cli/up-to-date.ts), which loads a handful of small modules; only when the build must run, and for
 * every other command, is the whole CLI (yargs, the BuildKit client, the planner) loaded.
 */
import { processIo } from './process-io.js';

/** Runs the CLI with the given arguments and resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'build') {
    const { upToDateBuild } = await import('./up-to-date.js');
    if (await upToDateBuild(argv.slice(1), processIo(), process.cwd())) return 0;
  }
  const cli = await import('./main.js');
  return cli.main(argv);
}
