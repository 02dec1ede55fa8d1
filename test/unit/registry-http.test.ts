// Pure pieces of the registry client: chunk sizes, Content-Range, upload Range, retry classification and
// backoff, Retry-After, Bearer challenges, scopes, settings from the environment, insecure hosts.
import assert from 'node:assert/strict';
import type { AddressInfo, Socket } from 'node:net';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { CogError } from '../../src/errors.js';
import {
  RegistryClient,
  RegistryError,
  anonymousKeychain,
  backoffDelay,
  checkImagePlatform,
  chooseChunkSize,
  chunkRanges,
  contentRange,
  defaultChunkSize,
  defaultRetryPolicy,
  delayAfter,
  envKeychain,
  getManifest,
  insecureRegistries,
  isInsecureHost,
  isLoopbackHost,
  isRetryableError,
  isRetryableStatus,
  multiKeychain,
  noImageFor,
  parseChallenges,
  parseLength,
  parseReference,
  parseRetryAfter,
  parseUploadedRange,
  pickChallenge,
  pickChild,
  pushChunkSize,
  pushConcurrency,
  pushMultipartThreshold,
  redactUrl,
  repositoryScope,
  sleep,
  withRetry,
} from '../../src/registry/index.js';

const MiB = 1024 * 1024;

describe('chunks', () => {
  test('chunk size: the registry maximum less 64 KiB when stated, else preferred; raised to the minimum', () => {
    assert.equal(defaultChunkSize, 96 * MiB);
    assert.equal(chooseChunkSize(96 * MiB), 96 * MiB);
    assert.equal(chooseChunkSize(16 * MiB, { min: 32 * MiB }), 32 * MiB);
    assert.equal(chooseChunkSize(96 * MiB, { max: 50 * MiB }), 50 * MiB - 64 * 1024);
    assert.equal(chooseChunkSize(96 * MiB, { min: 5 * MiB, max: 200 * MiB }), 200 * MiB - 64 * 1024);
    assert.equal(
      chooseChunkSize(96 * MiB, { min: 5 * MiB, max: 5 * MiB }),
      5 * MiB,
      'the minimum, not past the maximum',
    );
    assert.equal(chooseChunkSize(1 * MiB, { min: 80 * MiB, max: 60 * MiB }), 60 * MiB, 'the maximum wins');
    assert.equal(
      chooseChunkSize(96 * MiB, { max: 1000 }),
      1000,
      'a maximum below the headroom is used as it is',
    );
    assert.equal(chooseChunkSize(0), 1);
  });
  test('header lengths', () => {
    assert.equal(parseLength('5242880'), 5242880);
    assert.equal(parseLength(' 12 '), 12);
    for (const bad of [undefined, '', '0', '-1', '1.5', 'abc']) assert.equal(parseLength(bad), undefined);
  });
  test('Content-Range is inclusive and has no unit', () => {
    assert.equal(contentRange(0, 99), '0-99');
    assert.equal(contentRange(100, 100), '100-100');
    assert.deepEqual(chunkRanges(250, 100), [
      [0, 99],
      [100, 199],
      [200, 249],
    ]);
    assert.deepEqual(chunkRanges(200, 100, 150), [[150, 199]]);
  });
  test('the Range a registry answers is the count of bytes it holds', () => {
    assert.equal(parseUploadedRange('0-0'), 0);
    assert.equal(parseUploadedRange('0-1048575'), 1048576);
    assert.equal(parseUploadedRange('bytes=0-99'), 100);
    for (const bad of [undefined, '', '5-10', 'x']) assert.equal(parseUploadedRange(bad), undefined);
  });
});

describe('retry', () => {
  const err = (status: number, retryAfterMs?: number) =>
    new RegistryError('x', { status, method: 'GET', url: 'http://h/v2/', retryAfterMs });
  const socket = (code: string) => Object.assign(new Error(code), { code });

  test('statuses', () => {
    for (const s of [408, 429, 499, 500, 502, 503, 504, 522]) assert.ok(isRetryableStatus(s), String(s));
    for (const s of [400, 401, 403, 404, 405, 416, 501, 505]) assert.ok(!isRetryableStatus(s), String(s));
  });
  test('errors: sockets and 5xx yes; auth, cancellation and input errors no', () => {
    assert.ok(isRetryableError(err(503)));
    assert.ok(isRetryableError(err(429)));
    assert.ok(!isRetryableError(err(401)));
    assert.ok(!isRetryableError(err(403)));
    for (const code of ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT'])
      assert.ok(isRetryableError(socket(code)), code);
    // wrapped: a network RegistryError (no status) around a reset
    assert.ok(
      isRetryableError(
        new RegistryError('cannot reach', {
          status: undefined,
          method: 'PATCH',
          url: 'u',
          cause: socket('ECONNRESET'),
        }),
      ),
    );
    assert.ok(!isRetryableError(new DOMException('stop', 'AbortError')));
    assert.ok(!isRetryableError(socket('UND_ERR_ABORTED')));
    assert.ok(!isRetryableError(new CogError('bad input')));
    assert.ok(!isRetryableError(socket('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH')));
  });
  test('backoff grows by the factor, is capped, and adds bounded jitter', () => {
    const p = { ...defaultRetryPolicy, initialDelayMs: 100, factor: 2, maxDelayMs: 1000, jitter: 0.5 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, p, () => 0)),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.equal(
      backoffDelay(2, p, () => 1),
      300,
    );
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(3, p);
      assert.ok(d >= 400 && d <= 600);
    }
  });
  test('Retry-After wins over the backoff, within a cap', () => {
    const p = { ...defaultRetryPolicy, maxRetryAfterMs: 5000 };
    assert.equal(delayAfter(err(429, 2000), 1, p), 2000);
    assert.equal(delayAfter(err(429, 90_000), 1, p), 5000);
    assert.equal(parseRetryAfter('3'), 3000);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });
  test('withRetry retries what is retryable, stops on what is not, and on abort', async () => {
    const p = { ...defaultRetryPolicy, attempts: 4, initialDelayMs: 1, maxDelayMs: 2 };
    let calls = 0;
    assert.equal(
      await withRetry(
        async () => {
          if (++calls < 3) throw err(502);
          return 'ok';
        },
        { policy: p },
      ),
      'ok',
    );
    assert.equal(calls, 3);
    calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw err(401);
        },
        { policy: p },
      ),
      (e: unknown) => e instanceof RegistryError && e.status === 401,
    );
    assert.equal(calls, 1);
    calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw err(500);
        },
        { policy: p },
      ),
    );
    assert.equal(calls, 4);
    const controller = new AbortController();
    const slow = { ...p, initialDelayMs: 60_000, maxDelayMs: 60_000 };
    const started = Date.now();
    const pending = withRetry(
      async () => {
        throw err(503);
      },
      { policy: slow, signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(pending, (e: Error) => e.name === 'AbortError');
    assert.ok(Date.now() - started < 2000);
    await assert.rejects(sleep(10, AbortSignal.abort()), (e: Error) => e.name === 'AbortError');
  });

  test('an error a loop gave up on is not tried again by a loop around it', async () => {
    const p = { ...defaultRetryPolicy, attempts: 3, initialDelayMs: 1, maxDelayMs: 2 };
    let calls = 0;
    const inner = () =>
      withRetry(
        async () => {
          calls++;
          throw err(503);
        },
        { policy: p },
      );
    await assert.rejects(withRetry(inner, { policy: p }), (e: unknown) => e instanceof RegistryError);
    assert.equal(calls, 3, 'three tries, not nine');
  });

  test('an unreachable registry: a manifest read tries its ping three times over both schemes, then stops', async () => {
    // a port that takes connections and drops them at once, on HTTP and HTTPS alike
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new RegistryClient({
      env: {},
      keychain: anonymousKeychain,
      retry: { ...defaultRetryPolicy, initialDelayMs: 1, maxDelayMs: 2 },
    });
    try {
      await assert.rejects(getManifest(client, parseReference(`${registry}/x/y:v1`), 'v1'), (e: Error) => {
        assert.match(e.message, /cannot reach 127\.0\.0\.1:\d+ over plain HTTP or HTTPS/);
        return true;
      });
      assert.equal(connections, 6, 'three pings of two connections each');
    } finally {
      await client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('a web server that is not a registry (404 on /v2/) is named as such, not as a missing repository', async () => {
    const { createServer: createHttpServer } = await import('node:http');
    const web = createHttpServer((_req, res) => res.writeHead(404).end('not found'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(web.address() as AddressInfo).port}`;
    const client = new RegistryClient({ env: {}, keychain: anonymousKeychain });
    try {
      await assert.rejects(getManifest(client, parseReference(`${registry}/x/y:v1`), 'v1'), (e: Error) => {
        assert.match(e.message, /^127\.0\.0\.1:\d+ does not serve the registry API: .*answered HTTP 404$/);
        assert.match((e as CogError).hint ?? '', /something other than a registry answered/);
        return true;
      });
    } finally {
      await client.close();
      await new Promise<void>((resolve) => web.close(() => resolve()));
    }
  });

  test('a server that takes connections and never answers: the ping gives up in seconds, on one scheme', async () => {
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket); // held open, never answered
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const retries: string[] = [];
    const client = new RegistryClient({
      env: {},
      keychain: anonymousKeychain,
      pingAnswerMs: 200,
      retry: {
        ...defaultRetryPolicy,
        initialDelayMs: 1,
        maxDelayMs: 2,
        onRetry: (info) => retries.push(String(info.attempt)),
      },
    });
    const started = Date.now();
    try {
      await assert.rejects(getManifest(client, parseReference(`${registry}/x/y:v1`), 'v1'), (e: Error) => {
        assert.match(
          e.message,
          /^127\.0\.0\.1:\d+ did not answer GET http:\/\/127\.0\.0\.1:\d+\/v2\/ within 0\.2 s$/,
        );
        assert.match((e as CogError).hint ?? '', /takes connections but does not answer/);
        return true;
      });
      assert.deepEqual(retries, ['1', '2'], 'three tries, each said');
      assert.equal(sockets.length, 3, 'plain HTTP only: TLS to a silent server would only wait again');
      assert.ok(Date.now() - started < 5_000, `gave up after ${Date.now() - started} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('challenges', () => {
  test('Bearer with realm, service and scope', () => {
    const c = pickChallenge(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull,push"',
    );
    assert.deepEqual(c, {
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/python:pull,push',
      },
    });
  });
  test('Basic, unquoted values, escapes, odd spacing and several challenges', () => {
    assert.deepEqual(parseChallenges('Basic realm="cog-ts-testbed"'), [
      { scheme: 'basic', params: { realm: 'cog-ts-testbed' } },
    ]);
    assert.deepEqual(
      parseChallenges('bearer  Realm=https://x/t , error="insufficient_scope", scope="a \\"b\\""'),
      [{ scheme: 'bearer', params: { realm: 'https://x/t', error: 'insufficient_scope', scope: 'a "b"' } }],
    );
    const two = parseChallenges('Basic realm="r1", Bearer realm="https://t",service="s"');
    assert.deepEqual(
      two.map((c) => c.scheme),
      ['basic', 'bearer'],
    );
    assert.equal(pickChallenge('Basic realm="r1", Bearer realm="https://t"')?.scheme, 'bearer');
    assert.equal(pickChallenge('Negotiate abc'), undefined);
    assert.equal(pickChallenge(undefined), undefined);
  });
  test('scopes', () => {
    assert.equal(repositoryScope('user/model', ['pull', 'push']), 'repository:user/model:pull,push');
  });
});

describe('settings', () => {
  test('COG_PUSH_CONCURRENCY and COG_PUSH_DEFAULT_CHUNK_SIZE: defaults, values, errors naming the variable', () => {
    assert.equal(pushConcurrency({}), 5);
    assert.equal(pushConcurrency({ COG_PUSH_CONCURRENCY: '12' }), 12);
    for (const bad of ['0', '-2', 'lots', '1.5'])
      assert.throws(
        () => pushConcurrency({ COG_PUSH_CONCURRENCY: bad }),
        (e: unknown) =>
          e instanceof CogError && /COG_PUSH_CONCURRENCY/.test(e.message) && /unset it/.test(e.hint ?? ''),
      );
    assert.equal(pushChunkSize({}), 96 * MiB);
    assert.equal(pushChunkSize({ COG_PUSH_DEFAULT_CHUNK_SIZE: String(16 * MiB) }), 16 * MiB);
    assert.throws(
      () => pushChunkSize({ COG_PUSH_DEFAULT_CHUNK_SIZE: '16MiB' }),
      /COG_PUSH_DEFAULT_CHUNK_SIZE/,
    );
    assert.throws(
      () => pushConcurrency({ COG_PUSH_CONCURRENCY: '9007199254740993' }),
      (e: unknown) =>
        e instanceof CogError && e.message === 'COG_PUSH_CONCURRENCY="9007199254740993" is too large',
    );
  });
  test('COG_PUSH_MULTIPART_THRESHOLD: 128 MiB by default, 0 allowed, bad values name the variable', () => {
    assert.equal(pushMultipartThreshold({}), 134217728);
    assert.equal(pushMultipartThreshold({ COG_PUSH_MULTIPART_THRESHOLD: ' ' }), 134217728);
    assert.equal(pushMultipartThreshold({ COG_PUSH_MULTIPART_THRESHOLD: '1048576' }), MiB);
    assert.equal(pushMultipartThreshold({ COG_PUSH_MULTIPART_THRESHOLD: '0' }), 0);
    for (const bad of ['-1', '128MiB', '1e9', 'big'])
      assert.throws(
        () => pushMultipartThreshold({ COG_PUSH_MULTIPART_THRESHOLD: bad }),
        (e: unknown) =>
          e instanceof CogError &&
          e.message.startsWith(`COG_PUSH_MULTIPART_THRESHOLD=${JSON.stringify(bad)} is not`) &&
          /set COG_PUSH_MULTIPART_THRESHOLD to a size in bytes/.test(e.hint ?? ''),
        bad,
      );
  });
  test('plain HTTP for loopback and COG_INSECURE_REGISTRIES only', () => {
    const list = insecureRegistries({ COG_INSECURE_REGISTRIES: ' reg.lan:5000, Other.Lan ' });
    assert.deepEqual(list, ['reg.lan:5000', 'other.lan']);
    // a scheme written in front is dropped; an entry that is no host[:port] is refused, naming it
    assert.deepEqual(insecureRegistries({ COG_INSECURE_REGISTRIES: 'http://a.lan:5000/, ,b.lan' }), [
      'a.lan:5000',
      'b.lan',
    ]);
    for (const bad of ['bar:99999', 'a b', 'ftp://x'])
      assert.throws(
        () => insecureRegistries({ COG_INSECURE_REGISTRIES: `ok.lan,${bad}` }),
        (e: CogError) =>
          e.message === `COG_INSECURE_REGISTRIES: "${bad}" is not a registry's host[:port]` &&
          /host\[:port\]/.test(e.hint ?? ''),
        bad,
      );
    for (const h of [
      'localhost:5000',
      '127.0.0.1:5055',
      '127.1.2.3',
      '[::1]:80',
      'reg.lan:5000',
      'other.lan:443',
    ])
      assert.ok(isInsecureHost(h, list), h);
    for (const h of ['r8.im', 'reg.lan:5001', 'registry-1.docker.io', '128.0.0.1:5000'])
      assert.ok(!isInsecureHost(h, list), h);
    // loopback hosts are asked over plain HTTP first; insecure remote ones over HTTPS first
    for (const h of ['localhost:5000', '127.0.0.1:5055', '[::1]:80']) assert.ok(isLoopbackHost(h), h);
    for (const h of ['reg.lan:5000', '128.0.0.1:5000', 'localhost.lan']) assert.ok(!isLoopbackHost(h), h);
  });
  test('env keychain and composition', async () => {
    const env = envKeychain({ COG_REGISTRY_USERNAME: 'u', COG_REGISTRY_PASSWORD: 'p' });
    assert.deepEqual(await env.resolve('r8.im'), { username: 'u', secret: 'p' });
    assert.equal(await envKeychain({ COG_REGISTRY_USERNAME: 'u' }).resolve('r8.im'), undefined);
    const second = { resolve: () => Promise.resolve({ username: 'x', secret: 'y' }) };
    assert.deepEqual(await multiKeychain(envKeychain({}), second).resolve('h'), {
      username: 'x',
      secret: 'y',
    });
  });
  test('redacted URLs keep no query or user-info', () => {
    assert.equal(
      redactUrl('https://u:p@h:5000/v2/x/blobs/uploads/abc?_state=SECRET&digest=d'),
      'https://h:5000/v2/x/blobs/uploads/abc',
    );
  });
  test('index children: the platform asked for, else the first', () => {
    const index = {
      manifests: [
        { digest: 'a', platform: { os: 'linux', architecture: 'arm64' } },
        { digest: 'b', platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    assert.equal(pickChild(index, { os: 'linux', architecture: 'amd64' }), 'b');
    assert.equal(pickChild(index, { os: 'windows', architecture: 'amd64' }), 'a');
    assert.equal(pickChild({}, { os: 'linux', architecture: 'amd64' }), undefined);
  });
  test('index children, exactly: the platform asked for or none; arm64 without a variant is v8', () => {
    const index = {
      manifests: [
        { digest: 'a', platform: { os: 'linux', architecture: 'arm64' } },
        { digest: 'b', platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    assert.equal(pickChild(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }, true), 'a');
    assert.equal(pickChild(index, { os: 'linux', architecture: 'arm64', variant: 'v7' }, true), undefined);
    assert.equal(pickChild(index, { os: 'linux', architecture: 's390x' }, true), undefined);
    const missing = noImageFor('r.example/a/b:v1', index, { os: 'linux', architecture: 's390x' });
    assert.equal(missing.message, 'r.example/a/b:v1 has no image for linux/s390x');
    assert.equal(missing.hint, 'it has linux/arm64, linux/amd64; pick one with --platform');
  });
  test('a single image is checked against the platform asked for', () => {
    const config = { os: 'linux', architecture: 'amd64' };
    checkImagePlatform('x', config, { os: 'linux', architecture: 'amd64' });
    assert.throws(
      () => checkImagePlatform('x', config, { os: 'linux', architecture: 'arm64' }),
      (e: CogError) => e.message === 'x is an image for linux/amd64, not linux/arm64',
    );
    checkImagePlatform(
      'y',
      { os: 'linux', architecture: 'arm64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    );
  });
  test('index children: a bundle falls back to its image, never to a weight (os unknown)', () => {
    const bundle = {
      manifests: [
        { digest: 'w', platform: { os: 'unknown', architecture: 'unknown' } },
        { digest: 'img', platform: { os: 'linux', architecture: 'arm64' } },
      ],
    };
    assert.equal(pickChild(bundle, { os: 'linux', architecture: 'amd64' }), 'img');
    const onlyWeights = {
      manifests: [{ digest: 'w', platform: { os: 'unknown', architecture: 'unknown' } }],
    };
    assert.equal(pickChild(onlyWeights, { os: 'linux', architecture: 'amd64' }), 'w');
  });
});
