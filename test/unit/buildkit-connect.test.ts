// Connecting never hangs: a dead or wrong BUILDKIT_HOST fails fast with what was tried and what to do.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BuildkitClient, newId, parseBuildkitHost } from '../../src/buildkit/client.js';
import { BuildkitError } from '../../src/buildkit/errors.js';

test('a socket with no daemon fails within the timeout, naming the address and a fix', async () => {
  const started = Date.now();
  await assert.rejects(
    BuildkitClient.connect('unix:///nonexistent/buildkitd.sock', { timeoutMs: 1500 }),
    (err) => {
      assert.ok(err instanceof BuildkitError);
      assert.match(err.message, /cannot reach buildkitd at unix:\/\/\/nonexistent\/buildkitd\.sock/);
      assert.match(err.hint ?? '', /BUILDKIT_HOST/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 10_000);
});

test('an unsupported BUILDKIT_HOST scheme is refused with the accepted forms', () => {
  assert.throws(() => parseBuildkitHost('docker-container://buildkitd'), /unsupported BUILDKIT_HOST/);
  assert.equal(parseBuildkitHost('tcp://127.0.0.1:1234').target, '127.0.0.1:1234');
  assert.equal(
    parseBuildkitHost('unix:///run/buildkit/buildkitd.sock').target,
    'unix:///run/buildkit/buildkitd.sock',
  );
});

test('ids are 25 base-36 characters and differ', () => {
  const a = newId();
  assert.match(a, /^[0-9a-z]{25}$/);
  assert.notEqual(a, newId());
});
