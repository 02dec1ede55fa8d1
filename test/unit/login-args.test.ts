// Which registry `cog login` / `cog logout` are for: SERVER or --registry; the same registry twice is
// fine, two different ones are refused. (SERVER after `--` is arguments.test.ts's.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registryArgument } from '../../src/cli/login-commands.js';
import { CogError } from '../../src/errors.js';

test('SERVER or --registry; two different registries are refused', () => {
  assert.equal(registryArgument({}), undefined);
  assert.equal(registryArgument({ server: 'a.example' }), 'a.example');
  assert.equal(registryArgument({ registry: 'b.example' }), 'b.example');
  assert.equal(registryArgument({ server: 'b.example', registry: 'b.example' }), 'b.example');
  // the same registry spelled two ways is one registry
  assert.equal(
    registryArgument({ server: 'http://B.example:5000/', registry: 'b.example:5000' }),
    'http://B.example:5000/',
  );
  // and Docker Hub under its aliases is Docker Hub
  assert.equal(
    registryArgument({ server: 'https://index.docker.io/v1/', registry: 'docker.io' }),
    'https://index.docker.io/v1/',
  );
  for (const argv of [
    { server: 'a.example', registry: 'b.example' },
    { registry: ['a.example', 'b.example'] },
  ])
    assert.throws(
      () => registryArgument(argv),
      (e: unknown) => e instanceof CogError && e.message === 'name one registry',
    );
});
