// Which proxy a registry request goes through (src/registry/proxy.ts): HTTP(S)_PROXY and NO_PROXY as
// Go's net/http reads them.
import assert from 'node:assert/strict';
import { type Server, type Socket, createServer } from 'node:net';
import { describe, test } from 'node:test';
import { CogError } from '../../src/errors.js';
import { RegistryClient } from '../../src/registry/client.js';
import { defaultRetryPolicy } from '../../src/registry/retry.js';
import { describeProxy, proxyFor, proxyRefusal, proxySettings } from '../../src/registry/proxy.js';

const via = (url: string, env: NodeJS.ProcessEnv) => proxyFor(new URL(url), proxySettings(env))?.href;

describe('registry proxy settings', () => {
  test('no proxy variable: every request goes direct', () => {
    assert.equal(proxySettings({}), undefined);
    assert.equal(proxySettings({ NO_PROXY: 'example.com' }), undefined);
    assert.equal(via('https://r8.im/v2/', {}), undefined);
  });

  test('HTTPS_PROXY for https URLs, HTTP_PROXY for http ones; https without HTTPS_PROXY goes direct', () => {
    const env = { HTTPS_PROXY: 'http://secure-proxy:3128', HTTP_PROXY: 'http://plain-proxy:8080' };
    assert.equal(via('https://r8.im/v2/', env), 'http://secure-proxy:3128/');
    assert.equal(via('http://registry.internal:5000/v2/', env), 'http://plain-proxy:8080/');
    assert.equal(via('https://r8.im/v2/', { HTTP_PROXY: 'http://plain-proxy:8080' }), undefined);
  });

  test('the uppercase name wins over the lowercase one; the lowercase one alone counts', () => {
    assert.equal(
      via('https://ghcr.io/v2/', { HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:2' }),
      'http://upper:1/',
    );
    assert.equal(via('https://ghcr.io/v2/', { https_proxy: 'http://lower:2' }), 'http://lower:2/');
  });

  test('a proxy without a scheme is http://; its credentials stay out of its description', () => {
    assert.equal(via('https://ghcr.io/v2/', { HTTPS_PROXY: 'proxy.corp:3128' }), 'http://proxy.corp:3128/');
    const proxy = proxyFor(
      new URL('https://ghcr.io/v2/'),
      proxySettings({ HTTPS_PROXY: 'http://alice:s3cret@proxy.corp:3128' }),
    );
    assert.ok(proxy);
    assert.equal(describeProxy(proxy), 'http://proxy.corp:3128');
    assert.ok(!describeProxy(proxy).includes('s3cret'));
  });

  test('localhost and loopback addresses are never proxied', () => {
    const env = { HTTPS_PROXY: 'http://p:1', HTTP_PROXY: 'http://p:1' };
    for (const url of [
      'http://localhost:5000/v2/',
      'http://127.0.0.1:5055/v2/',
      'http://127.8.9.10/v2/',
      'http://[::1]:5000/v2/',
    ])
      assert.equal(via(url, env), undefined, url);
    assert.equal(via('http://10.0.0.1:5000/v2/', env), 'http://p:1/');
  });

  test('NO_PROXY: names match themselves and subdomains; a leading dot or *. subdomains only', () => {
    const env = { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'example.com, .corp.net,*.lab.io' };
    assert.equal(via('https://example.com/v2/', env), undefined);
    assert.equal(via('https://registry.example.com/v2/', env), undefined);
    assert.equal(via('https://notexample.com/v2/', env), 'http://p:1/');
    assert.equal(via('https://corp.net/v2/', env), 'http://p:1/');
    assert.equal(via('https://registry.corp.net/v2/', env), undefined);
    assert.equal(via('https://lab.io/v2/', env), 'http://p:1/');
    assert.equal(via('https://a.lab.io/v2/', env), undefined);
    assert.equal(
      via('https://EXAMPLE.com/v2/', { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'Example.COM' }),
      undefined,
    );
  });

  test('NO_PROXY: ports, IP addresses, CIDR ranges and *', () => {
    const env = {
      HTTPS_PROXY: 'http://p:1',
      HTTP_PROXY: 'http://p:1',
      NO_PROXY: 'registry.corp:5000,10.1.2.3,192.168.0.0/16,[fd00::1]:443',
    };
    assert.equal(via('http://registry.corp:5000/v2/', env), undefined);
    assert.equal(via('https://registry.corp/v2/', env), 'http://p:1/', 'another port is proxied');
    assert.equal(via('https://10.1.2.3:8443/v2/', env), undefined);
    assert.equal(via('https://10.1.2.4/v2/', env), 'http://p:1/');
    assert.equal(via('https://192.168.40.2/v2/', env), undefined);
    assert.equal(via('https://192.169.0.1/v2/', env), 'http://p:1/');
    assert.equal(via('https://[fd00::1]/v2/', env), undefined);
    assert.equal(via('https://[fd00::2]/v2/', env), 'http://p:1/');
    assert.equal(
      via('https://anything.example/v2/', { HTTPS_PROXY: 'http://p:1', NO_PROXY: '*' }),
      undefined,
    );
  });

  test('a proxy variable that is no proxy address fails a request through it, naming the variable', () => {
    for (const value of ['ftp://proxy:21', 'socks5://proxy:1080', 'http://', '::::']) {
      const env = { HTTPS_PROXY: value, NO_PROXY: 'exempt.example' };
      assert.throws(
        () => via('https://r8.im/v2/', env),
        (err: unknown) =>
          err instanceof CogError &&
          /^HTTPS_PROXY is not a proxy address/.test(err.message) &&
          /unset it/.test(err.hint ?? ''),
        value,
      );
      // requests it would not carry go direct, as in Go: a loopback registry, NO_PROXY, the other scheme
      assert.equal(via('https://127.0.0.1:5000/v2/', env), undefined, value);
      assert.equal(via('https://exempt.example/v2/', env), undefined, value);
      assert.equal(via('http://r8.im/v2/', env), undefined, value);
    }
  });

  test("undici's error for a refused tunnel or a 407 to a plain-HTTP request gives the proxy's status; other errors none", () => {
    assert.equal(proxyRefusal(new Error('Proxy response (407) !== 200 when HTTP Tunneling')), 407);
    assert.equal(proxyRefusal(new Error('Proxy response (502) !== 200 when HTTP Tunneling')), 502);
    assert.equal(proxyRefusal(new Error('Proxy Authentication Required (407)')), 407);
    assert.equal(proxyRefusal(new Error('connect ECONNREFUSED 127.0.0.1:1')), undefined);
    assert.equal(proxyRefusal('Proxy response (407)'), undefined);
  });
});

/** A proxy that takes connections and never answers (a CONNECT waits for ever). */
async function silentProxy(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => sockets.push(socket.on('error', () => undefined)));
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((closed) => server.close(closed));
    },
  };
}

test('a % in the proxy credentials that starts no escape is refused naming the variable', () => {
  assert.throws(
    () => via('https://r8.im/v2/', { HTTPS_PROXY: 'http://u:PROXY%SECRET@127.0.0.1:5099' }),
    (err: unknown) =>
      err instanceof CogError &&
      err.message === 'the user or password in HTTPS_PROXY has a % that starts no escape' &&
      !err.message.includes('SECRET') &&
      /%25/.test(err.hint ?? ''),
  );
  assert.ok(proxySettings({ HTTPS_PROXY: 'http://u:p%25w@127.0.0.1:5099' }), 'an escaped % is fine');
});

describe('a proxy that takes the connection and never answers', () => {
  test('its CONNECT has a time limit of our own, and the error names the proxy (undici waited 300 s)', async () => {
    const proxy = await silentProxy();
    const client = new RegistryClient({
      env: { HTTPS_PROXY: proxy.url },
      proxyAnswerMs: 300,
      retry: { ...defaultRetryPolicy, attempts: 1 },
    });
    try {
      await assert.rejects(client.checkAnswers('registry.example'), (err: Error) => {
        assert.equal(
          err.message,
          `the proxy ${proxy.url} (HTTPS_PROXY) took the connection and did not answer the request for a tunnel to registry.example within 0.3 s`,
        );
        assert.match((err as CogError).hint ?? '', /NO_PROXY/);
        return true;
      });
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  test('a plain-HTTP request sent to it (no CONNECT) fails within the ping time limit, naming the proxy', async () => {
    const proxy = await silentProxy();
    const client = new RegistryClient({
      env: { HTTP_PROXY: proxy.url },
      insecureRegistries: ['registry.invalid'],
      pingAnswerMs: 300,
      retry: { ...defaultRetryPolicy, attempts: 1 },
    });
    try {
      await assert.rejects(client.checkAnswers('registry.invalid'), (err: Error) => {
        assert.equal(
          err.message,
          `no answer to GET http://registry.invalid/v2/ through the proxy ${proxy.url} (HTTP_PROXY) within 0.3 s`,
        );
        assert.match(
          (err as CogError).hint ?? '',
          /the proxy or registry\.invalid behind it does not answer.*NO_PROXY/,
        );
        return true;
      });
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  test('an abort ends the request at once, and close() does not wait for the CONNECT', async () => {
    const proxy = await silentProxy();
    const client = new RegistryClient({ env: { HTTPS_PROXY: proxy.url }, proxyAnswerMs: 60_000 });
    const started = Date.now();
    try {
      await assert.rejects(
        client.checkAnswers('registry.example', AbortSignal.timeout(200)),
        /abort|timeout/i,
      );
      await client.close();
      assert.ok(Date.now() - started < 5_000, `ended after ${Date.now() - started} ms`);
    } finally {
      await proxy.close();
    }
  });
});
