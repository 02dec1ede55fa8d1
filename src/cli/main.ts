import yargs from 'yargs';
import { CogError, NotImplementedError } from '../errors.js';
import { cogVersion } from '../version.js';
import { plannedCommands } from './commands.js';
import { debugLlb } from './debug-llb.js';

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
  cli.command('debug', 'Print the build plan and the LLB graph for cog.yaml', (y) =>
    y
      .command(
        'llb',
        'Write an LLB Definition to stdout (readable by `buildctl debug dump-llb` and `buildctl build`)',
        (c) =>
          c
            .option('example', {
              type: 'string',
              demandOption: true,
              describe: 'name of a graph of the LLB corpus',
            })
            .option('format', { choices: ['definition', 'json'] as const, default: 'definition' as const })
            .option('http-url', {
              type: 'string',
              default: 'http://127.0.0.1:5055/v2/',
              describe: 'URL for the http source',
            })
            .option('git-url', {
              type: 'string',
              default: 'git://127.0.0.1/repo.git',
              describe: 'URL for the git source',
            }),
        (argv) =>
          debugLlb(
            {
              example: argv.example,
              format: argv.format,
              httpUrl: argv['http-url'],
              gitUrl: argv['git-url'],
            },
            process.stdout,
          ),
      )
      .demandCommand(
        1,
        'Name what to debug: `cog debug llb`. (`cog debug` of cog.yaml comes with issue #4.)',
      ),
  );
  for (const command of plannedCommands.filter((c) => c.name !== 'debug')) {
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
