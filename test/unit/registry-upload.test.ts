// Blob uploads against a small in-memory registry on loopback: the multipart threshold decides between
// one PUT and PATCH chunks; a registry that refuses chunks (416) gets the whole blob in one PATCH on a new
// session; a resume after a lost half-chunk never makes progress go backwards (uploadBlob and pushImage);
// and the scheme: HTTPS first, plain HTTP only for loopback and COG_INSECURE_REGISTRIES.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { truncate, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, test } from 'node:test';
import { MockAgent } from 'undici';
import { CogError } from '../../src/errors.js';
import {
  type BlobSource,
  type PushProgress,
  RegistryClient,
  type RegistryError,
  type RetryPolicy,
  anonymousKeychain,
  blobExists,
  fileBlobSource,
  parseReference,
  pushFromLayout,
  startUpload,
  uploadBlob,
} from '../../src/registry/index.js';
import { type FakeRegistry, type FakeRegistryOptions, startFakeRegistry } from '../support/fake-registry.js';
import { writeLayout } from '../support/registry-fixtures.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

const fast: RetryPolicy = {
  attempts: 5,
  initialDelayMs: 1,
  factor: 2,
  maxDelayMs: 5,
  jitter: 0,
  maxRetryAfterMs: 10,
};
const tempDir = tempDirsRemovedAfterTests();

/** A blob in memory, streamed in 1000-byte pieces; records the ranges opened. */
function memorySource(data: Buffer): BlobSource & { opened: [number, number][] } {
  const opened: [number, number][] = [];
  return {
    digest: `sha256:${createHash('sha256').update(data).digest('hex')}`,
    size: data.length,
    opened,
    open(start, end) {
      opened.push([start, end]);
      const pieces: Buffer[] = [];
      for (let at = start; at <= end; at += 1000)
        pieces.push(data.subarray(at, Math.min(at + 1000, end + 1)));
      return Readable.from(pieces, { objectMode: false });
    },
  };
}

let registry: FakeRegistry | undefined;
let client: RegistryClient | undefined;
afterEach(async () => {
  await client?.close();
  await registry?.close();
  client = registry = undefined;
});

async function setup(options: FakeRegistryOptions = {}) {
  registry = await startFakeRegistry(options);
  client = new RegistryClient({ env: {}, keychain: anonymousKeychain, retry: fast });
  return { registry, client, repo: parseReference(`${registry.host}/cogts/upload`) };
}

const uploadCalls = (r: FakeRegistry) =>
  r.log.filter((q) => q.path.includes('/blobs/uploads/')).map((q) => `${q.method} ${q.status}`);

/** Asserts a list of numbers never decreases. */
function assertMonotonic(values: readonly number[], what: string) {
  for (let i = 1; i < values.length; i++)
    assert.ok(values[i]! >= values[i - 1]!, `${what} went back at ${i}: ${values.join(', ')}`);
}

describe('multipart threshold', () => {
  test('a blob at the threshold goes in one PUT; one byte over it goes in PATCH chunks', async () => {
    const { registry, client, repo } = await setup();
    const one = memorySource(randomBytes(3000));
    await uploadBlob(client, repo, one, { multipartThreshold: 3000, chunkSize: 1000 });
    assert.deepEqual(uploadCalls(registry), ['POST 202', 'PUT 201']);
    assert.equal(registry.log.find((q) => q.method === 'PUT')?.bodyBytes, 3000);
    assert.deepEqual(registry.blobs.get(one.digest)?.length, 3000);

    registry.log.length = 0;
    const two = memorySource(randomBytes(3000));
    await uploadBlob(client, repo, two, { multipartThreshold: 2999, chunkSize: 1000 });
    assert.deepEqual(uploadCalls(registry), ['POST 202', 'PATCH 202', 'PATCH 202', 'PATCH 202', 'PUT 201']);
    assert.deepEqual(
      registry.log.filter((q) => q.method === 'PATCH').map((q) => q.contentRange),
      ['0-999', '1000-1999', '2000-2999'],
    );
    assert.ok(registry.blobs.has(two.digest));
  });

  test('by default blobs up to 128 MiB go in one request, whatever the chunk size', async () => {
    const { registry, client, repo } = await setup();
    await uploadBlob(client, repo, memorySource(randomBytes(5000)), { chunkSize: 1000 });
    assert.deepEqual(uploadCalls(registry), ['POST 202', 'PUT 201']);
  });
});

describe('a registry that refuses chunked uploads', () => {
  test('416 on a Content-Range PATCH: a new session, the whole blob in one streamed PATCH, then PUT', async () => {
    const { registry, client, repo } = await setup({ refuseChunks: true });
    const source = memorySource(randomBytes(5000));
    const progress: number[] = [];
    const stats = await uploadBlob(client, repo, source, {
      multipartThreshold: 0,
      chunkSize: 1000,
      onProgress: (done) => progress.push(done),
    });
    assert.deepEqual(uploadCalls(registry), [
      'POST 202',
      'PATCH 416',
      'GET 204', // where is the session? at 0, where we sent from: not a resume
      'DELETE 204',
      'POST 202',
      'PATCH 202',
      'PUT 201',
    ]);
    const patches = registry.log.filter((q) => q.method === 'PATCH');
    assert.deepEqual(
      patches.map((q) => [q.contentRange, q.bodyBytes]),
      [
        ['0-999', 1000],
        [undefined, 5000],
      ],
    );
    assert.notEqual(patches[0]!.path, patches[1]!.path, 'the whole blob goes to a new session');
    assert.deepEqual(source.opened.at(-1), [0, 4999], 'streamed from the source in one range');
    assert.equal(stats.wholeBlobFallback, true);
    assert.equal(registry.blobs.get(source.digest)?.length, 5000);
    assert.equal(progress.at(-1), 5000);
    assertMonotonic(progress, 'progress');
  });

  test('416 because the registry holds fewer bytes than we thought resumes at its offset instead', async () => {
    const { registry, client, repo } = await setup({ keepHalfOfPatch: [2], halfPatchAnswer: 202 });
    const source = memorySource(randomBytes(5000));
    const stats = await uploadBlob(client, repo, source, { multipartThreshold: 0, chunkSize: 1000 });
    assert.equal(stats.wholeBlobFallback, false);
    assert.equal(stats.resumes, 1);
    assert.deepEqual(
      registry.log.filter((q) => q.method === 'PATCH').map((q) => `${q.contentRange} ${q.status}`),
      [
        '0-999 202',
        '1000-1999 202',
        '2000-2999 416',
        '1500-2499 202',
        '2500-3499 202',
        '3500-4499 202',
        '4500-4999 202',
      ],
    );
    assert.ok(registry.blobs.has(source.digest));
  });
});

describe('progress never goes backwards', () => {
  test('uploadBlob: a resume below what was sent reports nothing until the old mark is passed', async () => {
    const { registry, client, repo } = await setup({ keepHalfOfPatch: [2] });
    const source = memorySource(randomBytes(4000));
    const progress: number[] = [];
    const stats = await uploadBlob(client, repo, source, {
      multipartThreshold: 0,
      chunkSize: 1000,
      onProgress: (done) => progress.push(done),
    });
    assert.equal(stats.resumes, 1);
    assert.ok(stats.bytesSent > 4000, 'half a chunk went twice');
    assert.ok(progress.includes(2000), 'the lost chunk had been reported in full');
    assertMonotonic(progress, 'blob progress');
    assert.equal(progress.at(-1), 4000);
    assert.ok(registry.blobs.has(source.digest));
  });

  test('pushImage: per-blob and total bytes only grow, and end at the full size', async () => {
    const { registry, client, repo } = await setup({ keepHalfOfPatch: [3] });
    const dir = join(await tempDir('cogts-upload-layout-'), 'layout');
    await writeLayout(dir, { layerSizes: [6000, 2500], seed: 'progress' });
    const events: PushProgress[] = [];
    await pushFromLayout(
      client,
      dir,
      undefined,
      { ...repo, tag: 'v1', digest: undefined },
      {
        concurrency: 1,
        chunkSize: 1000,
        multipartThreshold: 0,
        onProgress: (e) => events.push(e),
      },
    );
    assert.ok(
      registry.log.some((q) => q.method === 'PATCH' && q.status === 500),
      'a chunk was lost',
    );
    assert.ok(
      registry.log.some((q) => q.method === 'GET' && q.path.includes('/uploads/')),
      'resumed',
    );
    assertMonotonic(
      events.map((e) => e.total.done),
      'total',
    );
    const byBlob = new Map<string, number[]>();
    for (const e of events) byBlob.set(e.blob.digest, [...(byBlob.get(e.blob.digest) ?? []), e.blob.done]);
    for (const [digest, done] of byBlob) assertMonotonic(done, digest);
    const last = events.at(-1)!;
    assert.equal(last.total.done, last.total.size);
    assert.ok(registry.manifests.has('v1'));
  });
});

describe('scheme: HTTPS first, plain HTTP only where allowed', () => {
  const digest = `sha256:${'0'.repeat(64)}`;
  const mock = () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    return agent;
  };

  test('a loopback registry without TLS is reached over HTTP after HTTPS fails', async () => {
    const { client, repo } = await setup();
    assert.equal(await blobExists(client, repo, digest), false);
    assert.equal(client.baseUrl(repo.registry), `http://${repo.registry}`);
  });

  test('a host in COG_INSECURE_REGISTRIES or on loopback: HTTPS when it answers, else HTTP', async () => {
    const agent = mock();
    agent.get('https://reg.lan:5000').intercept({ path: '/v2/' }).replyWithError(new Error('no TLS here'));
    agent.get('http://reg.lan:5000').intercept({ path: '/v2/' }).reply(200, '{}');
    agent
      .get('http://reg.lan:5000')
      .intercept({ path: `/v2/m/blobs/${digest}`, method: 'HEAD' })
      .reply(200);
    agent.get('https://tls.lan').intercept({ path: '/v2/' }).reply(200, '{}');
    agent
      .get('https://tls.lan')
      .intercept({ path: `/v2/m/blobs/${digest}`, method: 'HEAD' })
      .reply(404);
    agent.get('https://localhost:5443').intercept({ path: '/v2/' }).reply(200, '{}');
    agent
      .get('https://localhost:5443')
      .intercept({ path: `/v2/m/blobs/${digest}`, method: 'HEAD' })
      .reply(404);
    const c = new RegistryClient({
      env: { COG_INSECURE_REGISTRIES: 'reg.lan:5000,tls.lan' },
      keychain: anonymousKeychain,
      retry: { ...fast, attempts: 1 },
      dispatcher: agent,
    });
    assert.equal(await blobExists(c, parseReference('reg.lan:5000/m'), digest), true);
    assert.equal(c.baseUrl('reg.lan:5000'), 'http://reg.lan:5000');
    assert.equal(await blobExists(c, parseReference('tls.lan/m'), digest), false);
    assert.equal(c.baseUrl('tls.lan'), 'https://tls.lan');
    // loopback needs no listing, and HTTPS still comes first there
    assert.equal(await blobExists(c, parseReference('localhost:5443/m'), digest), false);
    assert.equal(c.baseUrl('localhost:5443'), 'https://localhost:5443');
    agent.assertNoPendingInterceptors();
    await agent.close();
  });

  test('a registry where neither scheme answers: one error naming both, without the insecure-registry hint', async () => {
    const agent = mock();
    const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    agent.get('http://127.0.0.1:5999').intercept({ path: '/v2/' }).replyWithError(refused());
    agent.get('https://127.0.0.1:5999').intercept({ path: '/v2/' }).replyWithError(refused());
    const c = new RegistryClient({
      env: {},
      keychain: anonymousKeychain,
      retry: { ...fast, attempts: 1 },
      dispatcher: agent,
    });
    await assert.rejects(blobExists(c, parseReference('127.0.0.1:5999/m'), digest), (err: RegistryError) => {
      assert.match(
        err.message,
        /^cannot reach 127\.0\.0\.1:5999 over plain HTTP or HTTPS: GET 127\.0\.0\.1:5999\/v2\/ failed/,
      );
      assert.doesNotMatch(err.hint ?? '', /COG_INSECURE_REGISTRIES/);
      assert.match(err.hint ?? '', /running/);
      return true;
    });
    agent.assertNoPendingInterceptors();
    await agent.close();
  });

  test('any other host never falls back to HTTP', async () => {
    const agent = mock();
    agent
      .get('https://reg.example:5000')
      .intercept({ path: '/v2/' })
      .replyWithError(new Error('no TLS here'));
    agent.get('http://reg.example:5000').intercept({ path: '/v2/' }).reply(200, '{}');
    const c = new RegistryClient({
      env: {},
      keychain: anonymousKeychain,
      retry: { ...fast, attempts: 1 },
      dispatcher: agent,
    });
    await assert.rejects(
      blobExists(c, parseReference('reg.example:5000/m'), digest),
      /cannot reach reg\.example:5000: GET https:\/\/reg\.example:5000\/v2\/ failed/,
    );
    assert.equal(agent.pendingInterceptors().length, 1, 'the plain-HTTP answer was never asked for');
    await agent.close();
  });
});

describe('upload sessions, redirects and lost sessions', () => {
  const patchSizes = (r: FakeRegistry) =>
    r.log.filter((q) => q.method === 'PATCH').map((q) => `${q.bodyBytes} ${q.status}`);

  test('a HEAD answered with a redirect to object storage counts as the blob being there', async () => {
    const { client, repo } = await setup({ redirectBlobHeads: true });
    const source = memorySource(randomBytes(3000));
    await uploadBlob(client, repo, source);
    assert.equal(await blobExists(client, repo, source.digest), true);
    assert.equal(await blobExists(client, repo, `sha256:${'0'.repeat(64)}`), false);
  });

  test('relative Locations are resolved against the request that returned them', async () => {
    const { registry, client, repo } = await setup({ relativeLocations: true });
    const source = memorySource(randomBytes(5000));
    await uploadBlob(client, repo, source, { multipartThreshold: 0, chunkSize: 2000 });
    const paths = new Set(
      registry.log
        .filter((q) => q.path.includes('/blobs/uploads/') && q.method !== 'POST')
        .map((q) => `${q.method} ${q.path}`),
    );
    assert.deepEqual(
      [...paths],
      ['PATCH /v2/cogts/upload/blobs/uploads/1', 'PUT /v2/cogts/upload/blobs/uploads/1'],
    );
    assert.equal(registry.blobs.get(source.digest)?.length, 5000);
  });

  test('a session the registry lost mid-upload (404 on a PATCH) starts over on a new one', async () => {
    const { registry, client, repo } = await setup({ loseSessionAtPatch: [3] });
    const source = memorySource(randomBytes(5000));
    const stats = await uploadBlob(client, repo, source, { multipartThreshold: 0, chunkSize: 2000 });
    assert.equal(stats.restarts, 1);
    assert.equal(stats.wholeBlobFallback, false);
    assert.deepEqual(uploadCalls(registry), [
      'POST 202',
      'PATCH 202',
      'PATCH 202',
      'PATCH 404',
      'POST 202',
      'PATCH 202',
      'PATCH 202',
      'PATCH 202',
      'PUT 201',
    ]);
    assert.equal(registry.blobs.get(source.digest)?.length, 5000);
  });

  test('a session lost after taking chunks (400, then 404 on its status) starts over, not as one PATCH', async () => {
    const { registry, client, repo } = await setup({ loseSessionAtPatch: [2], lostSessionAnswer: 400 });
    const source = memorySource(randomBytes(5000));
    const stats = await uploadBlob(client, repo, source, { multipartThreshold: 0, chunkSize: 2000 });
    assert.equal(stats.wholeBlobFallback, false);
    assert.equal(stats.restarts, 1);
    assert.deepEqual(uploadCalls(registry).slice(0, 5), [
      'POST 202',
      'PATCH 202',
      'PATCH 400',
      'GET 404',
      'POST 202',
    ]);
    assert.deepEqual(patchSizes(registry).slice(2), ['2000 202', '2000 202', '1000 202']);
    assert.equal(registry.blobs.get(source.digest)?.length, 5000);
  });

  test('a registry that loses every session after a chunk gets as many sessions as retry attempts, then an error', async () => {
    // sessions of 2 chunks' life: each takes one PATCH and loses the next (PATCH 2, 4, 6, …)
    const lost = Array.from({ length: 40 }, (_, i) => 2 * (i + 1));
    const { registry, client, repo } = await setup({ loseSessionAtPatch: lost });
    const source = memorySource(randomBytes(5000));
    await assert.rejects(
      uploadBlob(client, repo, source, { multipartThreshold: 0, chunkSize: 2000 }),
      (e: unknown) =>
        e instanceof CogError &&
        /lost the upload session of blob .* 5 times/.test(e.message) &&
        /load balancer/.test(e.hint ?? ''),
    );
    const calls = uploadCalls(registry);
    assert.equal(calls.filter((c) => c === 'POST 202').length, fast.attempts, 'one session per attempt');
    assert.equal(calls.filter((c) => c === 'PATCH 404').length, fast.attempts);
    assert.equal(calls.at(-1), 'DELETE 404', 'the last session is let go (the registry forgot it already)');
  });

  test('a blob file that is gone or shorter than its size is a local error, not an unreachable registry', async () => {
    const { registry, client, repo } = await setup();
    const dir = await tempDir('cogts-upload-unreadable-');
    const data = randomBytes(5000);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await writeFile(join(dir, 'short'), data.subarray(0, 3000));
    const cases = [
      { file: join(dir, 'gone'), threshold: 1 << 20, said: /ENOENT: no such file or directory/ },
      { file: join(dir, 'gone'), threshold: 0, said: /ENOENT: no such file or directory/ },
      { file: join(dir, 'short'), threshold: 1 << 20, said: /it ended after 3000 of 5000 bytes/ },
      { file: join(dir, 'short'), threshold: 0, said: /it ended after 1000 of 2000 bytes/ },
    ];
    for (const { file, threshold, said } of cases) {
      await assert.rejects(
        uploadBlob(client, repo, fileBlobSource(file, digest, data.length), {
          multipartThreshold: threshold,
          chunkSize: 2000,
        }),
        (e: unknown) =>
          e instanceof CogError &&
          /^reading blob [0-9a-f]{12} to upload it failed: /.test(e.message) &&
          said.test(e.message) &&
          !/cannot reach/.test(e.message) &&
          /build the image again/.test(e.hint ?? ''),
        `${file}, threshold ${threshold}`,
      );
    }
    assert.equal(registry.blobs.has(digest), false);
    // one try each: a local failure is not retried
    assert.equal(uploadCalls(registry).filter((c) => c === 'POST 202').length, cases.length);
  });

  test('a damaged blob in the store (its bytes hash to another digest) is named, with how to mend the store', async () => {
    const { registry, client, repo } = await setup();
    const data = randomBytes(3000);
    const named = `sha256:${createHash('sha256').update(randomBytes(8)).digest('hex')}`;
    const damaged = { ...memorySource(data), digest: named };
    for (const threshold of [1 << 20, 0]) {
      await assert.rejects(
        uploadBlob(client, repo, damaged, { multipartThreshold: threshold, chunkSize: 2000 }),
        (e: unknown) =>
          e instanceof CogError &&
          e.message ===
            `blob ${named} in the local image store has the content of sha256:${createHash('sha256').update(data).digest('hex')}: it is damaged` &&
          /cog image rm NAME/.test(e.hint ?? ''),
        `threshold ${threshold}`,
      );
    }
    assert.equal(registry.blobs.has(named), false);
    assert.equal(
      uploadCalls(registry).filter((c) => c === 'PUT 400').length,
      1,
      'one PUT (not retried), no chunked commit',
    );
  });

  test('a blob cut short in the store is named as damaged, with how to mend the store (not "rebuild")', async () => {
    const { registry, client } = await setup();
    const layout = await writeLayout(await tempDir('cogts-truncated-'), { layerSizes: [3000], seed: 'cut' });
    const layer = layout.layers[0]!;
    await truncate(join(layout.dir, 'blobs', 'sha256', layer.digest.slice('sha256:'.length)), 1000);
    await assert.rejects(
      pushFromLayout(client, layout.dir, undefined, parseReference(`${registry.host}/a/b:v1`)),
      (e: unknown) =>
        e instanceof CogError &&
        e.message ===
          `blob ${layer.digest} in ${layout.dir} has 1000 bytes, not ${layer.size}: it is damaged (cut short)` &&
        /^remove the images that use it \(`cog image ls`, `cog image rm NAME`, which drops blobs no image uses\), then build again/.test(
          e.hint ?? '',
        ),
    );
  });

  test('a web server answering 200 to everything is not taken for a registry the push landed on', async () => {
    const { createServer } = await import('node:http');
    const web = createServer((req, res) => {
      req.resume();
      res
        .writeHead(200, { 'content-type': 'text/html', 'content-length': '13' })
        .end(req.method === 'HEAD' ? undefined : '<html></html>');
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(web.address() as AddressInfo).port}`;
    const c = new RegistryClient({ env: {}, keychain: anonymousKeychain, retry: fast });
    try {
      const layout = await writeLayout(await tempDir('cogts-webserver-'), {
        layerSizes: [3000],
        seed: 'web',
      });
      await assert.rejects(
        pushFromLayout(c, layout.dir, undefined, parseReference(`${host}/a/b:v1`)),
        (e: unknown) =>
          e instanceof CogError &&
          /HTTP 200, not 202 and an upload session: it does not look like a registry/.test(e.message),
      );
    } finally {
      await c.close();
      await new Promise<void>((resolve) => web.close(() => resolve()));
    }
  });

  test('a session opened elsewhere keeps the chunk limits its answer stated', async () => {
    const { registry, client, repo } = await setup({ maxChunk: 64 * 1024 + 2000 });
    const source = memorySource(randomBytes(5000));
    const session = await startUpload(client, repo);
    assert.equal(session.maxChunk, 64 * 1024 + 2000);
    // the stated maximum less 64 KiB of headroom wins over the preferred 1000 bytes
    await uploadBlob(client, repo, source, { multipartThreshold: 0, chunkSize: 1000, session });
    assert.deepEqual(patchSizes(registry), ['2000 202', '2000 202', '1000 202']);
  });
});
