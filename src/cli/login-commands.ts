/**
 * `cog login` and `cog logout` as yargs commands. Their code (credential stores, the registry client)
 * is loaded only when one of them runs, so other commands do not pay for it at start-up.
 */
import type { Argv } from 'yargs';
import { normalizeRegistryHost } from '../buildkit/docker-config.js';
import { CogError } from '../errors.js';
import { processIo } from './process-io.js';
import { describeCommand } from './commands.js';

function singleRegistry(value: unknown): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  if (Array.isArray(value) && new Set(value.map((v) => normalizeRegistryHost(String(v)))).size === 1)
    return String(value[0]);
  throw new CogError('name one registry', {
    hint: 'give the registry once, as SERVER or as --registry',
  });
}

/**
 * The registry a login or logout is for: SERVER (main.ts has moved one that followed `--` into place), or
 * --registry (upstream's flag); both are fine when they agree, and anything else names more than one
 * registry.
 */
export function registryArgument(argv: {
  readonly server?: unknown;
  readonly registry?: unknown;
}): string | undefined {
  const given = [
    ...(typeof argv.server === 'string' ? [argv.server] : []),
    ...[singleRegistry(argv.registry)].filter((r): r is string => r !== undefined && r !== ''),
  ];
  return singleRegistry(given.length === 0 ? undefined : given);
}

/** Adds `cog login` and `cog logout` to the CLI. */
export function registerLoginCommands<T>(cli: Argv<T>): void {
  const registryOptions = <U>(c: Argv<U>) =>
    c.positional('server', {
      type: 'string',
      describe: 'host[:port] of the registry (or --registry HOST; default: $COG_REGISTRY_HOST, else r8.im)',
    });
  // --registry is the global (hidden) option, which upstream's login takes as the registry
  cli.command(
    'login [server]',
    describeCommand('login'),
    (c) =>
      registryOptions(c)
        .option('username', { alias: 'u', type: 'string', describe: 'username (other registries)' })
        .option('password', {
          alias: 'p',
          type: 'string',
          describe: 'password or token (insecure: prefer --password-stdin)',
        })
        .option('password-stdin', {
          type: 'boolean',
          default: false,
          describe: 'read the password (or r8.im token) from stdin',
        })
        .option('token-stdin', {
          type: 'boolean',
          default: false,
          describe: 'read the r8.im CLI token (or the password) from stdin',
        }),
    async (argv) =>
      (await import('./login.js')).login(
        {
          registry: registryArgument(argv),
          username: argv.username,
          password: argv.password,
          passwordStdin: argv['password-stdin'],
          tokenStdin: argv['token-stdin'],
        },
        processIo(),
      ),
  );
  cli.command(
    'logout [server]',
    describeCommand('logout'),
    (c) => registryOptions(c),
    async (argv) => (await import('./login.js')).logout({ registry: registryArgument(argv) }, processIo()),
  );
}
