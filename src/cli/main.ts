import yargs from 'yargs';
import { CogError, NotImplementedError } from '../errors.js';
import { cogVersion } from '../version.js';
import { plannedCommands } from './commands.js';

/** Runs the CLI with the given arguments and resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const cli = yargs([...argv])
    .scriptName('cog')
    .usage('$0 <command> [options]\n\nPackage machine-learning models into container images with BuildKit.')
    .version(`cog version ${cogVersion()} (cog-ts)`)
    .alias('v', 'version')
    .help()
    .alias('h', 'help')
    .strict()
    .demandCommand(1, 'Name a command; `cog --help` lists them.')
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      throw err ?? new CogError(msg, { hint: 'run `cog --help` for usage' });
    });
  for (const command of plannedCommands) {
    cli.command(
      [command.name, ...(command.aliases ?? [])],
      command.describe,
      (y) => y.strict(false),
      () => {
        throw new NotImplementedError(command.name, command.issue);
      },
    );
  }
  try {
    await cli.parseAsync();
    return 0;
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof CogError) {
    process.stderr.write(`cog: error: ${err.message}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    return err.exitCode;
  }
  process.stderr.write(
    `cog: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  return 70;
}
