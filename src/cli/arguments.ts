/**
 * Pure helpers for the CLI's argument list before and after yargs reads it: `--` (POSIX's end of options)
 * in front of an image name or registry, and yargs's own failure messages turned into ones that name the
 * command and its usage.
 */
import { CogError } from '../errors.js';
import { plannedCommands } from './commands.js';

const commandNames: ReadonlySet<string> = new Set(
  plannedCommands.flatMap((c) => [c.name, ...(c.aliases ?? [])]),
);

/** The commands whose positional arguments (an image, images, or a registry) may follow `--`. */
const positionalCommands: Readonly<Record<string, string>> = {
  run: 'IMAGE',
  predict: 'IMAGE',
  train: 'IMAGE',
  serve: 'IMAGE',
  push: 'IMAGE',
  inspect: 'IMAGE',
  'image rm': 'NAME...',
  login: 'SERVER',
  logout: 'SERVER',
};

/** The subcommands, each with a help of its own (`cog debug llb --help` lists options `cog debug --help` does not). */
const subcommands: ReadonlySet<string> = new Set([
  'debug llb',
  'debug solve',
  'debug plan',
  'image ls',
  'image rm',
  'image prune',
  'cache du',
  'cache prune',
]);

/**
 * What the value of an option is, for the error when it is missing: the names yargs may report (an
 * alias too), and the commands it is for when the same name takes another value elsewhere (`-o`, `-p`).
 */
const valueNouns: readonly { names: readonly string[]; noun: string; commands?: readonly string[] }[] = [
  { names: ['t', 'tag'], noun: 'an image name' },
  { names: ['f', 'file'], noun: 'a config file, e.g. cog.yaml' },
  { names: ['progress'], noun: 'auto, tty, plain, rawjson or quiet' },
  { names: ['platform'], noun: 'a platform, e.g. linux/amd64' },
  { names: ['secret'], noun: 'id=NAME,src=FILE or id=NAME,env=VAR' },
  { names: ['openapi-schema'], noun: 'a schema file' },
  { names: ['dockerfile'], noun: 'a Dockerfile' },
  { names: ['metadata-file'], noun: 'a file to write' },
  { names: ['use-cuda-base-image'], noun: 'auto, true or false' },
  { names: ['tlscacert'], noun: 'a CA certificate file' },
  { names: ['tlscert'], noun: 'a certificate file' },
  { names: ['tlskey'], noun: 'a key file' },
  { names: ['tlsservername'], noun: 'a server name' },
  { names: ['tlsdir'], noun: 'a directory' },
  { names: ['registry'], noun: 'a registry host' },
  { names: ['example'], noun: 'a graph of the LLB corpus' },
  { names: ['llb'], noun: 'a Definition file, or - for stdin' },
  { names: ['http-url', 'git-url', 'upload-url'], noun: 'a URL' },
  { names: ['local'], noun: 'NAME=DIR' },
  {
    names: ['o', 'output'],
    noun: 'type=oci|docker|tar,dest=FILE or type=image,name=REF[,push=true]',
    commands: ['build'],
  },
  { names: ['o', 'output'], noun: 'an exporter, e.g. type=image,name=REF', commands: ['debug'] },
  { names: ['o', 'output'], noun: 'a file, or DIR/', commands: ['run', 'predict', 'train'] },
  { names: ['cache-from'], noun: 'type=registry,ref=REF or type=local,src=DIR' },
  { names: ['cache-to'], noun: 'type=registry,ref=REF, type=local,dest=DIR or type=inline' },
  { names: ['i', 'input'], noun: 'name=value' },
  { names: ['json'], noun: 'a JSON object, @file or -' },
  { names: ['e', 'env'], noun: 'NAME=VALUE' },
  { names: ['gpus'], noun: 'all, a count, device=0,1 or none' },
  { names: ['host'], noun: 'an address to bind' },
  { names: ['p', 'publish'], noun: 'PORT, HOST:PORT or [IPV6]:PORT', commands: ['exec'] },
  { names: ['p', 'password'], noun: 'a password or token', commands: ['login'] },
  { names: ['u', 'username'], noun: 'a username' },
  { names: ['filter'], noun: 'a record filter, e.g. type==exec.cachemount' },
  { names: ['keep-duration'], noun: 'a duration, e.g. 24h' },
  { names: ['keep-storage'], noun: 'a size, e.g. 10GB' },
  { names: ['format'], noun: 'definition or json', commands: ['debug llb'] },
  { names: ['format'], noun: 'text, json or llb', commands: ['debug'] },
];

/**
 * What option `name` of `command` takes, or undefined when not listed; an entry's commands name a
 * subcommand (`debug llb`) or a command with all its subcommands (`debug`), the first match winning.
 */
export function valueNoun(command: string | undefined, name: string): string | undefined {
  const top = command?.split(' ')[0];
  return valueNouns.find(
    (n) =>
      n.names.includes(name) &&
      (n.commands === undefined ||
        (command !== undefined && (n.commands.includes(command) || n.commands.includes(top ?? '')))),
  )?.noun;
}

/** Global options that take a value (the next argument, unless written `--name=value`). */
const globalValueOptions: ReadonlySet<string> = new Set(['--registry']);

/** The command's words in `argv` and the index just after the last one; none before `--`. */
function commandWords(argv: readonly string[]): { words: string[]; after: number } {
  const words: string[] = [];
  let after = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') break;
    if (arg.startsWith('-')) {
      if (words.length === 0 && globalValueOptions.has(arg)) i++; // its value is not a command
      continue;
    }
    words.push(arg);
    after = i + 1;
    if (words.length === 2 || !['image', 'cache', 'debug'].includes(words[0] ?? '')) break;
  }
  return { words, after };
}

/**
 * The command an argument list runs (`image rm` for a subcommand), or undefined when it names none that
 * cog has.
 */
export function commandOf(argv: readonly string[]): string | undefined {
  const { words } = commandWords(argv);
  if (!commandNames.has(words[0] ?? '')) return undefined;
  return words.join(' ');
}

/**
 * The arguments with the names after a `--` moved to just after the command, so that `cog inspect --
 * REF` reads REF as the image (yargs would leave it aside, and `cog push -- REF` would push to cog.yaml's
 * image instead); moved there, not left where `--` was, so an option taking several values before it
 * (`-i a=1 -- REF`, `--secret …`) does not take the name as one more. Image names and registries never
 * start with `-`, so one that does is refused.
 */
export function positionalsAfterDashes(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  if (end !== -1 && commandWords(argv).words.length === 0 && argv.length > end + 1)
    throw new CogError(`\`--\` comes after the command, not before it (${argv.slice(end + 1).join(' ')})`, {
      hint: 'run `cog --help` for the commands',
    });
  const command = commandOf(argv);
  if (end === -1 || command === undefined || !(command in positionalCommands)) return [...argv];
  const rest = argv.slice(end + 1);
  const dashed = rest.find((arg) => arg.startsWith('-'));
  if (dashed !== undefined)
    throw new CogError(
      `${JSON.stringify(dashed)} after \`--\` is not a valid ${positionalCommands[command]} for \`cog ${command}\`: names never start with "-"`,
      { hint: `options go before \`--\`; run \`cog ${command} --help\` for usage` },
    );
  const { after } = commandWords(argv);
  return [...argv.slice(0, after), ...rest, ...argv.slice(after, end)];
}

/**
 * The surplus positionals yargs named, in the argument list positionalsAfterDashes gave it (the names
 * from after `--` first), as they stand in the user's order: the same number, from its end. `cog push A
 * -- B` reads B, then A, and the surplus is the last name the user wrote, B, not A.
 */
export function surplusAsWritten(named: readonly string[], written: readonly string[]): string[] {
  const end = written.indexOf('--');
  if (end === -1 || named.length === 0) return [...named];
  const afterDashes = written.slice(end + 1);
  const before = named.filter((name) => !afterDashes.includes(name));
  const order = [...before, ...afterDashes];
  return order.slice(Math.max(0, order.length - named.length));
}

/**
 * yargs's failure message as a CogError that names the command: a missing positional says which, and
 * the hint points at the command's own help. `argv` is the list yargs read; `written`, the user's
 * (before positionalsAfterDashes), when it differs.
 */
export function usageError(message: string, argv: readonly string[], written = argv): CogError {
  const command = commandOf(argv);
  // a subcommand's own help only for the ones cog has (a mistyped one is not a command)
  const helpFor = command === undefined || subcommands.has(command) ? command : command.split(' ')[0];
  const help = helpFor === undefined ? 'cog --help' : `cog ${helpFor} --help`;
  const hint = `run \`${help}\` for usage`;
  if (command !== undefined && /^Not enough non-option arguments/.test(message)) {
    const wanted = positionalCommands[command];
    return new CogError(
      wanted ? `\`cog ${command}\` needs ${wanted}` : `\`cog ${command}\` needs more arguments`,
      { hint },
    );
  }
  // an option that takes a value, given none (`-o` last, or before another option)
  const valueless = /^Not enough arguments following: (.+)$/.exec(message);
  if (valueless) {
    const name = valueless[1] ?? '';
    const form = optionForm(name, argv) ?? (name.length === 1 ? `-${name}` : `--${name}`);
    const what = valueNoun(command, name);
    // `-t -bad`: the word after the option starts with "-", so yargs read it as options (b, a, d)
    const next = argv[argv.lastIndexOf(form) + 1];
    const dashed =
      argv.includes(form) && next !== '--' && next?.startsWith('-')
        ? `; ${JSON.stringify(next)} looks like a flag`
        : '';
    return new CogError(`${form} needs a value${what ? ` (${what})` : ''}${dashed}`, { hint });
  }
  // a value outside an option's choices: yargs's "Invalid values:\n  Argument: format, Given: "x", Choices: …"
  const invalid = /Argument: ([^,]+), Given: (.+), Choices: (.+)$/m.exec(message);
  if (invalid) {
    const name = invalid[1] ?? '';
    const form = optionForm(name, argv) ?? (name.length === 1 ? `-${name}` : `--${name}`);
    const choices = (invalid[3] ?? '').replace(/"/g, '');
    return new CogError(`${form} ${invalid[2] ?? ''} is not one of ${choices}`, { hint });
  }
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown) {
    const firstWord = argv.find((arg) => !arg.startsWith('-'));
    if (command === undefined && firstWord !== undefined)
      return new CogError(`unknown command ${JSON.stringify(firstWord)}`, { hint });
    // yargs names an unknown `--foo-bar` twice, also as `fooBar`: once is enough
    const names = (unknown[1] ?? '').split(', ');
    const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const kept = names.filter((name) => kebab(name) === name || !names.includes(kebab(name)));
    const positionals = kept.filter((name) => optionForm(name, argv) === undefined);
    // only when positionalsAfterDashes moved the names after `--` (it drops the `--`)
    const surplus = argv.includes('--') ? positionals : surplusAsWritten(positionals, written);
    const named = kept.map((name) => {
      const form = optionForm(name, argv);
      return form
        ? `unknown option ${form}`
        : `unexpected argument ${JSON.stringify(surplus.shift() ?? name)}`;
    });
    return new CogError(named.join('; '), { hint });
  }
  return new CogError(message, { hint });
}

/** How the user wrote `name` as an option (`--name`, `-n`, `--no-name`), or undefined when not as one. */
function optionForm(name: string, argv: readonly string[]): string | undefined {
  for (const form of [`--${name}`, `-${name}`, `--no-${name}`]) {
    if (argv.some((arg) => arg === form || arg.startsWith(`${form}=`))) return form;
  }
  return undefined;
}

/**
 * An option that takes one value, given more than once (`-t a -t b`): yargs makes its value a list,
 * which the command would take for a string. The error names the option as written and the values;
 * `arrayKeys` are the options that may repeat (yargs's `array` list, aliases included).
 */
export function repeatedOptionError(
  parsed: Readonly<Record<string, unknown>>,
  arrayKeys: readonly string[],
  argv: readonly string[],
): CogError | undefined {
  const may = new Set(arrayKeys);
  for (const [key, value] of Object.entries(parsed)) {
    if (key === '_' || key === '$0' || may.has(key) || !Array.isArray(value)) continue;
    const form = optionForm(key, argv);
    // an alias's key (tag for -t) names the same option: report the form the user wrote
    if (form === undefined) continue;
    const command = commandOf(argv);
    return new CogError(
      `${form} was given ${value.length} times (${value.map((v) => JSON.stringify(String(v))).join(', ')}): it takes one value`,
      {
        hint: `give ${form} once (\`${command === undefined ? 'cog --help' : `cog ${command} --help`}\` lists the options)`,
      },
    );
  }
  return undefined;
}

/** Go's strconv.ParseBool, which the flags of upstream Cog and buildx are read with. */
const goTrue = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const goFalse = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** A switch's `--name=VALUE` read as Go reads it: true, false, or undefined for any other text. */
export function switchValue(value: string): boolean | undefined {
  return goTrue.has(value) ? true : goFalse.has(value) ? false : undefined;
}

/**
 * The switches (boolean options; `switches` lists their names, aliases included) written
 * `--name=VALUE` before any `--`, with the value each means as Go's flag package reads it (upstream
 * Cog, buildx): yargs takes every value but `true` as false, so `cog build --push=1` built and did not
 * push. A value Go refuses is refused here too, naming the option as written.
 * @throws CogError
 */
export function writtenSwitches(argv: readonly string[], switches: readonly string[]): Map<string, boolean> {
  const known = new Set(switches);
  const values = new Map<string, boolean>();
  const end = argv.indexOf('--');
  for (const arg of end === -1 ? argv : argv.slice(0, end)) {
    const match = /^--([^=]+)=(.*)$/s.exec(arg);
    if (!match || !known.has(match[1] as string)) continue;
    const [, name, text] = match as unknown as [string, string, string];
    const value = switchValue(text);
    if (value === undefined) {
      const command = commandOf(argv);
      throw new CogError(`--${name}=${text}: --${name} is a switch, on or off`, {
        hint: `write --${name} or --${name}=false (1, t, true and 0, f, false are taken too); \`${command === undefined ? 'cog --help' : `cog ${command} --help`}\` lists the options`,
      });
    }
    values.set(name, value);
  }
  return values;
}
