// The registry check before a build that BuildKit pushes (cli/push-preflight.ts), against small local
// servers: one that takes connections and never answers fails in seconds, naming the flag and the
// registry; one that asks for credentials has answered; each registry is asked once.
import assert from 'node:assert/strict';
import { type IncomingMessage, createServer } from 'node:http';
import { type AddressInfo, type Socket, createServer as createTcpServer } from 'node:net';
import { describe, test } from 'node:test';
import { checkPushRegistries, distinctRegistries } from '../../src/cli/push-preflight.js';
import { CogError } from '../../src/errors.js';
import { isConnectionFailure } from '../../src/registry/client.js';
import { RegistryError } from '../../src/registry/errors.js';
import { defaultRetryPolicy } from '../../src/registry/retry.js';

/** quick limits: an answer within 0.2 s, retries at once */
const quick = {
  pingAnswerMs: 200,
  retry: { ...defaultRetryPolicy, initialDelayMs: 1, maxDelayMs: 2 },
};

describe('push preflight', () => {
  test('a registry that takes connections and never answers fails in seconds, naming the flag and the registry', async () => {
    const sockets: Socket[] = [];
    const server = createTcpServer((socket) => {
      sockets.push(socket); // held open, never answered
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const retries: number[] = [];
    const started = Date.now();
    try {
      await assert.rejects(
        checkPushRegistries([{ registry, from: '-t' }], {
          env: {},
          client: quick,
          onRetry: (info) => retries.push(info.attempt),
        }),
        (err: unknown) => {
          assert.ok(err instanceof CogError);
          assert.equal(
            err.message,
            `-t: cannot push to ${registry}: ${registry} did not answer GET http://${registry}/v2/ within 0.2 s`,
          );
          assert.match(err.hint ?? '', /takes connections but does not answer/);
          assert.match(err.hint ?? '', /nothing was built/);
          return true;
        },
      );
      assert.deepEqual(retries, [1, 2], 'each retry is told');
      assert.ok(Date.now() - started < 5_000, `gave up after ${Date.now() - started} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('a registry asking for credentials has answered; none are sent, and each registry is asked once', async () => {
    const seen: IncomingMessage[] = [];
    const server = createServer((req, res) => {
      seen.push(req);
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await checkPushRegistries(
        [
          { registry, from: '-t' },
          { registry, from: '--output "type=image,name=x,push=true"' },
        ],
        {
          env: { COG_REGISTRY_USERNAME: 'user', COG_REGISTRY_PASSWORD: 'secret' },
          client: quick,
        },
      );
      assert.deepEqual(
        seen.map((r) => `${r.method} ${r.url}`),
        ['GET /v2/'],
      );
      assert.equal(seen[0]?.headers.authorization, undefined, 'the ping carries no credentials');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a registry this machine cannot connect to is only warned about: buildkitd pushes from its own network', async () => {
    const server = createTcpServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => server.close(() => resolve())); // nothing listens there now
    const unreachable: string[] = [];
    const retries: number[] = [];
    await checkPushRegistries([{ registry, from: '-t' }], {
      env: {},
      client: quick,
      onRetry: (info) => retries.push(info.attempt),
      onUnreachable: (target, err) =>
        unreachable.push(`${target.from} ${target.registry} ${(err as Error).message}`),
    });
    assert.equal(unreachable.length, 1);
    assert.deepEqual(retries, [], 'not tried again: a warning is not worth holding the build');
    assert.match(unreachable[0] ?? '', new RegExp(`^-t ${registry} cannot reach ${registry}.*ECONNREFUSED`));
  });

  test('a failure at the connection (refused, no host, untrusted certificate) is told apart from no answer and from an answer', () => {
    const failed = (code: string, status?: number) =>
      new RegistryError('x', {
        status,
        method: 'GET',
        url: 'https://r.example/v2/',
        cause: Object.assign(new Error(code), { code }),
      });
    assert.equal(isConnectionFailure(failed('SELF_SIGNED_CERT_IN_CHAIN')), true);
    assert.equal(isConnectionFailure(failed('ECONNREFUSED')), true);
    assert.equal(isConnectionFailure(failed('ENOTFOUND')), true);
    assert.equal(isConnectionFailure(failed('UND_ERR_HEADERS_TIMEOUT')), false, 'took it and never answered');
    assert.equal(isConnectionFailure(failed('ECONNREFUSED', 503)), false, 'an answer');
    assert.equal(isConnectionFailure(new Error('ECONNREFUSED')), false, 'not a registry request');
  });

  test('nothing to push asks nothing; the first name of a registry names it', async () => {
    await checkPushRegistries([], { env: {} });
    assert.deepEqual(
      distinctRegistries([
        { registry: 'a', from: '-t' },
        { registry: 'b', from: '--output x' },
        { registry: 'a', from: '--output y' },
      ]),
      [
        { registry: 'a', from: '-t' },
        { registry: 'b', from: '--output x' },
      ],
    );
  });
});
