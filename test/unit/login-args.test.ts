// Which registry `cog login` / `cog logout` are for: SERVER, SERVER after `--`, or --registry; the same
// registry twice is fine, two different ones are refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registryArgument } from '../../src/cli/login-commands.js';
import { CogError } from '../../src/errors.js';

test('SERVER, SERVER after --, or --registry; two different registries are refused', () => {
  assert.equal(registryArgument({ _: ['logout'] }), undefined);
  assert.equal(registryArgument({ _: ['logout'], server: 'a.example' }), 'a.example');
  assert.equal(registryArgument({ _: ['logout', 'a.example'] }), 'a.example', 'after --');
  assert.equal(registryArgument({ _: ['login'], registry: 'b.example' }), 'b.example');
  assert.equal(registryArgument({ _: ['login'], server: 'b.example', registry: 'b.example' }), 'b.example');
  for (const argv of [
    { _: ['logout'], server: 'a.example', registry: 'b.example' },
    { _: ['logout'], registry: ['a.example', 'b.example'] },
    { _: ['logout', 'a.example', 'b.example'] },
  ])
    assert.throws(
      () => registryArgument(argv),
      (e: unknown) => e instanceof CogError && e.message === 'name one registry',
    );
});
