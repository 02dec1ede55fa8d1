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
        checkPushRegistries([{ registry, repository: 'me/model', from: '-t' }], {
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

  test('the ping carries no credentials and is sent once per registry; each repository is then asked with them', async () => {
    const seen: IncomingMessage[] = [];
    const good = `Basic ${Buffer.from('user:secret').toString('base64')}`;
    const server = createServer((req, res) => {
      seen.push(req);
      if (req.headers.authorization === good) res.writeHead(200).end();
      else res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await checkPushRegistries(
        [
          { registry, repository: 'me/model', from: '-t' },
          { registry, repository: 'me/model', from: '--output "type=image,name=x,push=true"' },
          { registry, repository: 'me/other', from: '--output "type=image,name=y,push=true"' },
        ],
        {
          env: { COG_REGISTRY_USERNAME: 'user', COG_REGISTRY_PASSWORD: 'secret' },
          client: quick,
        },
      );
      assert.deepEqual(
        seen.map((r) => `${r.method} ${r.url} ${r.headers.authorization === good ? 'with' : 'without'}`),
        ['GET /v2/ without', 'GET /v2/ with', 'GET /v2/ with'],
      );
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a Basic registry without credentials, or refusing them, fails before the build with a cog login hint', async () => {
    const server = createServer((req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const target = { registry, repository: 'me/model', from: '-t' };
    try {
      await assert.rejects(checkPushRegistries([target], { env: {}, client: quick }), (err: unknown) => {
        assert.ok(err instanceof CogError);
        assert.equal(
          err.message,
          `-t: ${registry} requires authentication to push to ${registry}/me/model, and no credentials for it were found`,
        );
        assert.match(err.hint ?? '', new RegExp(`cog login ${registry}.*nothing was built`));
        return true;
      });
      await assert.rejects(
        checkPushRegistries([target], {
          env: { COG_REGISTRY_USERNAME: 'user', COG_REGISTRY_PASSWORD: 'wrong-pw-1234' },
          client: quick,
        }),
        (err: unknown) => {
          assert.ok(err instanceof CogError);
          assert.equal(
            err.message,
            `-t: ${registry} rejected the credentials for pushing to ${registry}/me/model`,
          );
          assert.ok(!`${err.message} ${err.hint}`.includes('wrong-pw-1234'), 'the password is not named');
          return true;
        },
      );
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a Bearer registry: a token that lists no push on the repository is refused; one that does, or says nothing, is not', async () => {
    const jwt = (access: unknown) =>
      ['{"alg":"none"}', JSON.stringify({ access }), 'sig']
        .map((part, i) => (i < 2 ? Buffer.from(part).toString('base64url') : part))
        .join('.');
    let token = '';
    const tokenRequests: string[] = [];
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/token')) {
        tokenRequests.push(
          `${decodeURIComponent(req.url)} ${req.headers.authorization ? 'with' : 'without'}`,
        );
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
        return;
      }
      const port = (server.address() as AddressInfo).port;
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="test"`,
        })
        .end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const target = { registry, repository: 'me/model', from: "'image' in cog.yaml" };
    try {
      token = jwt([{ type: 'repository', name: 'me/model', actions: ['pull'] }]);
      await assert.rejects(checkPushRegistries([target], { env: {}, client: quick }), (err: unknown) => {
        assert.ok(err instanceof CogError);
        assert.equal(
          err.message,
          `'image' in cog.yaml: ${registry} requires authentication to push to ${registry}/me/model, and no credentials for it were found`,
        );
        return true;
      });
      assert.deepEqual(tokenRequests, ['/token?service=test&scope=repository:me/model:pull,push without']);
      const withCreds = { COG_REGISTRY_USERNAME: 'user', COG_REGISTRY_PASSWORD: 'secret' };
      await assert.rejects(
        checkPushRegistries([target], { env: withCreds, client: quick }),
        (err: unknown) => {
          assert.ok(err instanceof CogError);
          assert.equal(
            err.message,
            `'image' in cog.yaml: ${registry} denied pushing to ${registry}/me/model`,
          );
          return true;
        },
      );
      token = jwt([{ type: 'repository', name: 'me/model', actions: ['pull', 'push'] }]);
      await checkPushRegistries([target], { env: withCreds, client: quick });
      token = 'an-opaque-token';
      await checkPushRegistries([target], { env: {}, client: quick });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('when cog pushes, a registry this machine cannot connect to is an error before the build', async () => {
    const server = createTcpServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => server.close(() => resolve())); // nothing listens there now
    await assert.rejects(
      checkPushRegistries([{ registry, repository: 'me/model', from: 'cog push IMAGE' }], {
        env: {},
        client: quick,
        pusher: 'cog',
        onUnreachable: () => assert.fail('not a warning when cog pushes'),
      }),
      (err: unknown) => {
        assert.ok(err instanceof CogError);
        assert.match(err.message, new RegExp(`^cog push IMAGE: cannot push to ${registry}: .*ECONNREFUSED`));
        assert.match(err.hint ?? '', /nothing was built/);
        return true;
      },
    );
  });

  test('a registry this machine cannot connect to is only warned about: buildkitd pushes from its own network', async () => {
    const server = createTcpServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => server.close(() => resolve())); // nothing listens there now
    const unreachable: string[] = [];
    const retries: number[] = [];
    await checkPushRegistries([{ registry, repository: 'me/model', from: '-t' }], {
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
        { registry: 'a', repository: 'r', from: '-t' },
        { registry: 'b', repository: 'r', from: '--output x' },
        { registry: 'a', repository: 's', from: '--output y' },
      ]),
      [
        { registry: 'a', repository: 'r', from: '-t' },
        { registry: 'b', repository: 'r', from: '--output x' },
      ],
    );
  });
});
