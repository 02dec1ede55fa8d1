// What a registry's bearer token grants (registry/token-grants.ts): JWT `access` lists, read for one
// repository; tokens that do not say are undefined (taken on trust).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grantedActions, grantsPush } from '../../src/registry/token-grants.js';

const jwt = (payload: unknown) =>
  [
    Buffer.from('{"alg":"ES256"}').toString('base64url'),
    Buffer.from(JSON.stringify(payload)).toString('base64url'),
    'c2ln',
  ].join('.');

test('the actions a JWT grants on the repository, wildcards included', () => {
  const token = jwt({
    access: [
      { type: 'repository', name: 'me/model', actions: ['pull'] },
      { type: 'repository', name: 'me/other', actions: ['push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'repository', name: 'me/model', actions: ['push', 7] },
    ],
  });
  assert.deepEqual(grantedActions(token, 'me/model'), ['pull', 'push']);
  assert.deepEqual(grantedActions(token, 'someone/else'), []);
  assert.deepEqual(
    grantedActions(jwt({ access: [{ type: 'repository', name: '*', actions: ['*'] }] }), 'a/b'),
    ['*'],
  );
  assert.equal(grantsPush(['pull', 'push']), true);
  assert.equal(grantsPush(['*']), true);
  assert.equal(grantsPush(['pull']), false);
  assert.equal(grantsPush([]), false);
});

test('tokens that do not say what they grant are undefined', () => {
  assert.equal(grantedActions('opaque-token', 'me/model'), undefined);
  assert.equal(grantedActions('a.b', 'me/model'), undefined);
  assert.equal(grantedActions(`x.${Buffer.from('not json').toString('base64url')}.y`, 'me/model'), undefined);
  assert.equal(grantedActions(jwt({ sub: 'me' }), 'me/model'), undefined, 'no access list');
  assert.equal(grantedActions(jwt(['access']), 'me/model'), undefined);
  assert.equal(grantedActions('x..y', 'me/model'), undefined);
});
