// The argument list around yargs: `--` in front of an image or registry, and yargs's failures turned
// into messages that name the command.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  commandOf,
  positionalsAfterDashes,
  repeatedOptionError,
  usageError,
  writtenSwitches,
} from '../../src/cli/arguments.js';
import { CogError } from '../../src/errors.js';

test('the command is the first word cog knows, with its subcommand for image, cache and debug', () => {
  assert.equal(commandOf(['inspect', 'x']), 'inspect');
  assert.equal(commandOf(['--debug', 'push', 'r8.im/a/b']), 'push');
  assert.equal(commandOf(['image', 'rm', 'a']), 'image rm');
  assert.equal(commandOf(['predict', '-i', 'x=1']), 'predict');
  assert.equal(commandOf(['bogus', 'x']), undefined);
  assert.equal(commandOf(['--', 'inspect']), undefined);
  assert.equal(commandOf([]), undefined);
  // the global --registry's value is not the command
  assert.equal(commandOf(['--registry', 'r.io', 'push', '--bogus']), 'push');
});

test('`--` before an image or registry is taken out, so the name reaches the positional', () => {
  assert.deepEqual(positionalsAfterDashes(['inspect', '--json', '--', 'r8.im/a/b']), [
    'inspect',
    'r8.im/a/b',
    '--json',
  ]);
  assert.deepEqual(positionalsAfterDashes(['push', '--', 'reg:5000/a/b:v1']), ['push', 'reg:5000/a/b:v1']);
  assert.deepEqual(positionalsAfterDashes(['image', 'rm', '--', 'a', 'b']), ['image', 'rm', 'a', 'b']);
  assert.deepEqual(positionalsAfterDashes(['logout', '--', 'a.example']), ['logout', 'a.example']);
  // an option taking several values before `--` does not take the name as one more
  assert.deepEqual(positionalsAfterDashes(['run', '-i', 'a=1', '--', 'r.io/x']), [
    'run',
    'r.io/x',
    '-i',
    'a=1',
  ]);
  assert.deepEqual(positionalsAfterDashes(['--debug', 'push', '--secret', 'id=a', '--', 'r.io/x']), [
    '--debug',
    'push',
    'r.io/x',
    '--secret',
    'id=a',
  ]);
  // commands without such positionals keep their `--` (build records, yargs's own handling)
  assert.deepEqual(positionalsAfterDashes(['build', '--', 'x']), ['build', '--', 'x']);
  assert.deepEqual(positionalsAfterDashes(['inspect', 'x']), ['inspect', 'x']);
});

test('a name after `--` that starts with "-" is refused, naming what the command wanted', () => {
  assert.throws(
    () => positionalsAfterDashes(['inspect', '--', '--json']),
    (e: unknown) =>
      e instanceof CogError &&
      e.message ===
        '"--json" after `--` is not a valid IMAGE for `cog inspect`: names never start with "-"' &&
      /cog inspect --help/.test(e.hint ?? ''),
  );
  assert.throws(
    () => positionalsAfterDashes(['--', 'push', 'r.io/x']),
    (e: unknown) => e instanceof CogError && /^`--` comes after the command, not before it/.test(e.message),
  );
  assert.throws(
    () => positionalsAfterDashes(['login', '--', '-x']),
    (e: unknown) => e instanceof CogError && /SERVER for `cog login`/.test(e.message),
  );
});

test("yargs's failures name the command, and the hint its help", () => {
  const missing = usageError('Not enough non-option arguments: got 0, need at least 1', ['inspect']);
  assert.equal(missing.message, '`cog inspect` needs IMAGE');
  assert.equal(missing.hint, 'run `cog inspect --help` for usage');
  assert.equal(
    usageError('Not enough non-option arguments: got 0, need at least 1', ['image', 'rm']).message,
    '`cog image rm` needs NAME...',
  );
  const unknown = usageError('Unknown argument: bogus', ['push', '--bogus=1']);
  assert.equal(unknown.message, 'unknown option --bogus');
  assert.equal(unknown.hint, 'run `cog push --help` for usage');
  assert.equal(
    usageError('Unknown arguments: q, b', ['inspect', 'a', 'b', '-q']).message,
    'unknown option -q; unexpected argument "b"',
  );
  assert.equal(
    usageError('Unknown arguments: foo-bar, fooBar', ['image', 'ls', '--foo-bar']).message,
    'unknown option --foo-bar',
  );
  // a mistyped command or subcommand points at the help that lists the real ones
  const command = usageError('Unknown argument: bogus', ['--debug', 'bogus']);
  assert.equal(command.message, 'unknown command "bogus"');
  assert.equal(command.hint, 'run `cog --help` for usage');
  const sub = usageError('Unknown argument: x', ['image', 'x']);
  assert.equal(sub.message, 'unexpected argument "x"');
  assert.equal(sub.hint, 'run `cog image --help` for usage');
});

test('an option given no value, or a dash-word where its value should be, says so (not one error per letter)', () => {
  const bad = usageError('Not enough arguments following: t', ['build', '-t', '-bad']);
  assert.equal(bad.message, '-t needs a value (an image name); "-bad" looks like a flag');
  assert.equal(bad.hint, 'run `cog build --help` for usage');
  assert.equal(
    usageError('Not enough arguments following: tag', ['build', '--tag', '--push']).message,
    '--tag needs a value (an image name); "--push" looks like a flag',
  );
  assert.equal(
    usageError('Not enough arguments following: t', ['build', '-t', 'a', '-t', '-x']).message,
    '-t needs a value (an image name); "-x" looks like a flag',
  );
  assert.equal(
    usageError('Not enough arguments following: t', ['build', '-t']).message,
    '-t needs a value (an image name)',
  );
  assert.equal(
    usageError('Not enough arguments following: o', ['build', '-o', '-bad']).message,
    '-o needs a value (type=oci|docker|tar,dest=FILE or type=image,name=REF[,push=true]); "-bad" looks like a flag',
  );
  // the same name, another command: what it wants there
  assert.equal(
    usageError('Not enough arguments following: o', ['run', '-o']).message,
    '-o needs a value (a file, or DIR/)',
  );
  assert.equal(
    usageError('Not enough arguments following: p', ['login', '-p']).message,
    '-p needs a value (a password or token)',
  );
  assert.equal(
    usageError('Not enough arguments following: zz', ['build', '--zz']).message,
    '--zz needs a value',
  );
  assert.equal(
    usageError('Not enough arguments following: t', ['build', '-t', '--']).message,
    '-t needs a value (an image name)',
  );
});

test('a surplus name is the one the user wrote last, also when `--` moved the names after it first', () => {
  // `cog push A -- B` is read as `push B A`: yargs finds A surplus, but B is the one too many
  const written = ['push', 'a.example/x', '--', 'b.example/y'];
  const read = positionalsAfterDashes(written);
  assert.deepEqual(read, ['push', 'b.example/y', 'a.example/x']);
  assert.equal(
    usageError('Unknown argument: a.example/x', read, written).message,
    'unexpected argument "b.example/y"',
  );
  const three = ['inspect', '--json', 'a', 'c', '--', 'b'];
  assert.equal(
    usageError('Unknown arguments: a, c', positionalsAfterDashes(three), three).message,
    'unexpected argument "c"; unexpected argument "b"',
  );
  // without `--` nothing moved: the names are as yargs gave them
  assert.equal(usageError('Unknown argument: b', ['push', 'a', 'b']).message, 'unexpected argument "b"');
});

test('options that may repeat are left alone; a single-value one given twice is named as written', () => {
  const argv = ['predict', '-i', 'a=1', '-i', 'b=2', '--tag', 'x', '--tag', 'y'];
  const parsed = {
    _: ['predict'],
    $0: 'cog',
    i: ['a=1', 'b=2'],
    input: ['a=1', 'b=2'],
    t: ['x', 'y'],
    tag: ['x', 'y'],
  };
  const err = repeatedOptionError(parsed, ['i', 'input'], argv);
  assert.equal(err?.message, '--tag was given 2 times ("x", "y"): it takes one value');
  assert.equal(err?.hint, 'give --tag once (`cog predict --help` lists the options)');
  assert.equal(repeatedOptionError({ ...parsed, t: 'y', tag: 'y' }, ['i', 'input'], argv), undefined);
  assert.equal(
    repeatedOptionError({ _: ['a', 'b'], $0: 'cog' }, [], ['a', 'b']),
    undefined,
    'positionals are not options',
  );
});

test("a switch written --name=VALUE takes Go's values (1, t, TRUE, 0, f, False …) and refuses others", () => {
  const switches = ['push', 'use-cog-base-image', 'x'];
  const read = writtenSwitches(
    ['build', '--push=1', '--use-cog-base-image=F', '--tag=1', '--x=True', '--', '--push=maybe'],
    switches,
  );
  assert.deepEqual(
    [...read],
    [
      ['push', true],
      ['use-cog-base-image', false],
      ['x', true],
    ],
  );
  assert.deepEqual([...writtenSwitches(['build', '--push', '--no-push'], switches)], [], 'no value written');
  for (const bad of ['yes', 'maybe', '', 'fasle', 'TrUe']) {
    assert.throws(
      () => writtenSwitches(['build', `--push=${bad}`], switches),
      (err: unknown) =>
        err instanceof CogError &&
        err.message === `--push=${bad}: --push is a switch, on or off` &&
        /--push=false/.test(err.hint ?? '') &&
        /cog build --help/.test(err.hint ?? ''),
    );
  }
});
