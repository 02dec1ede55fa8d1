// Connecting never hangs: a dead or wrong BUILDKIT_HOST fails fast with what was tried and what to do.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BuildkitClient, newId, parseBuildkitHost } from '../../src/buildkit/client.js';
import { BuildkitError } from '../../src/buildkit/errors.js';

test('a missing socket fails at once, naming the address, the path and a fix', async () => {
  const started = Date.now();
  await assert.rejects(
    BuildkitClient.connect('unix:///nonexistent/buildkitd.sock', { timeoutMs: 5000 }),
    (err) => {
      assert.ok(err instanceof BuildkitError);
      assert.match(
        err.message,
        /cannot reach buildkitd at unix:\/\/\/nonexistent\/buildkitd\.sock: no socket at/,
      );
      assert.match(err.hint ?? '', /BUILDKIT_HOST/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 1000, 'no waiting for the connect timeout');
});

test('a stale socket path with no daemon fails within the timeout', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-stale-sock-'));
  try {
    const path = join(dir, 'buildkitd.sock');
    await writeFile(path, ''); // exists, but nothing listens
    const started = Date.now();
    await assert.rejects(BuildkitClient.connect(`unix://${path}`, { timeoutMs: 1500 }), (err) => {
      assert.ok(err instanceof BuildkitError);
      assert.match(err.message, /no answer within 1\.5s/);
      return true;
    });
    assert.ok(Date.now() - started < 10_000);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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
