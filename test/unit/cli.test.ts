import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { plannedCommands } from '../../src/cli/commands.js';
import { NotImplementedError } from '../../src/errors.js';
import { exec } from '../support/exec.js';
import { repoRoot } from '../support/testbed.js';

const cog = `${repoRoot}bin/cog`;

describe('bin/cog', () => {
  test('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile(`${repoRoot}package.json`, 'utf8')) as { version: string };
    const result = await exec(cog, ['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), `cog version ${pkg.version} (cog-ts)`);
  });

  test('--help lists every planned command', async () => {
    const result = await exec(cog, ['--help']);
    assert.equal(result.code, 0);
    for (const command of plannedCommands) {
      assert.match(
        result.stdout,
        new RegExp(`cog ${command.name}( \\[\\w+\\]| <\\w+>)?\\s+${command.describe.slice(0, 20)}`),
      );
    }
    assert.ok(plannedCommands.length >= 11);
  });

  test('a planned command that is not built yet fails with the issue that builds it', () => {
    // every planned command may be built by now: check the error such a command throws
    const err = new NotImplementedError('frob', 6);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /`cog frob` is not implemented yet/);
    assert.match(err.hint ?? '', /it is planned in issue #6/);
  });

  test('an unknown command fails and points at --help', async () => {
    const result = await exec(cog, ['frobnicate']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Unknown argument: frobnicate/);
    assert.match(result.stderr, /cog --help/);
  });

  test('no command at all is an error, not a silent success', async () => {
    const result = await exec(cog, []);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Name a command/);
  });
});
