// Connecting never hangs: a dead or wrong BUILDKIT_HOST fails fast with what was tried and what to do.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttp2Server } from 'node:http2';
import { type AddressInfo, createServer } from 'node:net';
import { test } from 'node:test';
import { BuildkitClient, newId, parseBuildkitHost } from '../../src/buildkit/client.js';
import { BuildkitError } from '../../src/buildkit/errors.js';
import { freePort } from '../support/servers.js';

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
      // what a user does: start a daemon there, or name a running one (not this repository's test bed)
      assert.match(err.hint ?? '', /`buildkitd --addr unix:\/\/\/nonexistent\/buildkitd\.sock`/);
      assert.match(err.hint ?? '', /`export BUILDKIT_HOST=unix:\/\/\/run\/buildkit\/buildkitd\.sock`/);
      assert.doesNotMatch(err.hint ?? '', /testbed/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 1000, 'no waiting for the connect timeout');
});

test('a stale socket path with no daemon fails at once, saying nothing listens', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-stale-sock-'));
  try {
    const path = join(dir, 'buildkitd.sock');
    await writeFile(path, ''); // exists, but nothing listens
    const started = Date.now();
    await assert.rejects(BuildkitClient.connect(`unix://${path}`, { timeoutMs: 5000 }), (err) => {
      assert.ok(err instanceof BuildkitError);
      assert.match(
        err.message,
        /cannot reach buildkitd at unix:\/\/.*: connection refused \(nothing listens there\)/,
      );
      assert.match(err.hint ?? '', new RegExp(`\`buildkitd --addr unix://${path}\``));
      assert.doesNotMatch(err.hint ?? '', /testbed/);
      return true;
    });
    assert.ok(Date.now() - started < 2000, 'not the 5 s timeout');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a TCP port nothing listens on fails at once with the reason', async () => {
  const port = await freePort();
  const started = Date.now();
  await assert.rejects(BuildkitClient.connect(`tcp://127.0.0.1:${port}`, { timeoutMs: 5000 }), (err) => {
    assert.ok(err instanceof BuildkitError);
    assert.equal(
      err.message,
      `cannot reach buildkitd at tcp://127.0.0.1:${port}: connection refused (nothing listens there)`,
    );
    return true;
  });
  assert.ok(Date.now() - started < 2000, 'not the 5 s timeout');
});

test('a TCP server that is not buildkitd is named as such', async () => {
  // accepts and closes: the connection opens, no HTTP/2 session follows
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await assert.rejects(BuildkitClient.connect(`tcp://127.0.0.1:${port}`, { timeoutMs: 5000 }), (err) => {
      assert.ok(err instanceof BuildkitError);
      assert.match(err.message, /the connection opens, but no gRPC session starts: is it buildkitd/);
      return true;
    });
  } finally {
    server.close();
  }
});

test('an HTTP/2 server answering with a status names it and says it is not buildkitd', async () => {
  const server = createHttp2Server((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = await BuildkitClient.connect(`tcp://127.0.0.1:${port}`, { timeoutMs: 5000 });
  try {
    await assert.rejects(client.info(), (err) => {
      assert.ok(err instanceof BuildkitError);
      assert.equal(
        err.message,
        `tcp://127.0.0.1:${port} answered with HTTP status 404: it does not serve buildkitd's API`,
      );
      assert.match(err.hint ?? '', /point BUILDKIT_HOST at buildkitd itself/);
      return true;
    });
  } finally {
    client.close();
    server.close();
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
