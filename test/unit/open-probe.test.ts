// The credential-free manifest HEAD of registry/open-probe.ts against small local servers: only a
// 200 with a digest or a 404 is an answer; everything else sends the caller to the full client.
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { manifestAccept } from '../../src/registry/manifests.js';
import { probeManifest } from '../../src/registry/open-probe.js';
import { probeTargetFor } from '../../src/registry/probe-target.js';

const digest = `sha256:${'a'.repeat(64)}`;

async function withServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  run: (host: string, seen: IncomingMessage[]) => Promise<void>,
): Promise<void> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await run(`127.0.0.1:${(server.address() as AddressInfo).port}`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

const target = (host: string) => ({
  host,
  repository: 'team/model',
  reference: 'v1',
  accept: 'application/vnd.oci.image.manifest.v1+json',
});

describe('open registry probe', () => {
  test('200 with a digest is found; the request is a HEAD of the manifest without credentials', async () => {
    await withServer(
      (_req, res) => {
        res.writeHead(200, { 'docker-content-digest': digest, 'content-type': 'application/json' });
        res.end();
      },
      async (host, seen) => {
        assert.deepEqual(await probeManifest(target(host)), { kind: 'found', digest });
        assert.equal(seen.length, 1);
        assert.equal(seen[0]!.method, 'HEAD');
        assert.equal(seen[0]!.url, '/v2/team/model/manifests/v1');
        assert.equal(seen[0]!.headers.accept, 'application/vnd.oci.image.manifest.v1+json');
        assert.equal(seen[0]!.headers.authorization, undefined);
      },
    );
  });

  test('404 is missing', async () => {
    await withServer(
      (_req, res) => {
        res.writeHead(404);
        res.end();
      },
      async (host) => assert.deepEqual(await probeManifest(target(host)), { kind: 'missing' }),
    );
  });

  test('credentials wanted, no digest, a redirect or a server error: unknown', async () => {
    const answers: [number, Record<string, string>][] = [
      [401, { 'www-authenticate': 'Basic realm="registry"' }],
      [200, {}],
      [200, { 'docker-content-digest': 'md5:abc' }],
      [307, { location: 'https://elsewhere/v2/' }],
      [500, {}],
      [400, {}],
    ];
    for (const [status, headers] of answers)
      await withServer(
        (_req, res) => {
          res.writeHead(status, headers);
          res.end();
        },
        async (host) =>
          assert.deepEqual(await probeManifest(target(host)), { kind: 'unknown' }, `status ${status}`),
      );
  });

  test('nothing listening, a server that is not HTTP, or one that never answers: unknown', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    assert.deepEqual(await probeManifest(target(`127.0.0.1:${closedPort}`)), { kind: 'unknown' });

    const sockets: Socket[] = [];
    const garbage = createTcpServer((socket) => {
      sockets.push(socket);
      socket.end('\x15\x03\x01\x00\x02\x02\x46');
    });
    const silent = createTcpServer((socket) => void sockets.push(socket));
    for (const server of [garbage, silent]) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const started = Date.now();
      const answer = await probeManifest(target(`127.0.0.1:${(server.address() as AddressInfo).port}`), 300);
      assert.deepEqual(answer, { kind: 'unknown' });
      assert.ok(Date.now() - started < 5_000, 'the timeout ends the wait');
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a host that is not host[:port] is unknown without a request', async () => {
    assert.deepEqual(await probeManifest(target('bad host:port:x')), { kind: 'unknown' });
  });
});

describe('probe targets', () => {
  test('only registries on this machine or the insecure list are probed', () => {
    assert.deepEqual(probeTargetFor('127.0.0.1:5000/team/model:v1', {}), {
      host: '127.0.0.1:5000',
      repository: 'team/model',
      reference: 'v1',
      accept: manifestAccept,
    });
    assert.equal(
      probeTargetFor('localhost:5000/m@sha256:' + 'b'.repeat(64), {})?.reference,
      `sha256:${'b'.repeat(64)}`,
    );
    assert.equal(probeTargetFor('r8.im/user/model:v1', {}), undefined);
    assert.equal(probeTargetFor('user/model', {}), undefined, 'Docker Hub');
    assert.equal(probeTargetFor('registry.lan:5000/m:v1', {}), undefined);
    assert.equal(
      probeTargetFor('registry.lan:5000/m:v1', { COG_INSECURE_REGISTRIES: 'other, registry.lan:5000' })?.host,
      'registry.lan:5000',
    );
  });
});
