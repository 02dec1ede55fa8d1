// A large blob pushed through a proxy that cuts uploads mid-chunk and answers 500 and 429 at random
// (seeded) still lands with the right digest, and resumes at the registry's offset instead of starting
// over: the bytes sent beyond the blob's size stay under 10 %. COG_TEST_FAULT_BLOB_MIB sets the size
// (default 256; 2048 for the full-size run), COG_TEST_FAULT_CHUNK_MIB the chunk size (default 16).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { CogError } from '../../src/errors.js';
import {
  RegistryClient,
  type RetryPolicy,
  anonymousKeychain,
  blobExists,
  fileBlobSource,
  parseReference,
  startUpload,
  uploadBlob,
} from '../../src/registry/index.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { type Blob, writePseudoRandomFile } from '../support/registry-fixtures.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, type Testbed } from '../support/testbed.js';

const MiB = 1024 * 1024;
const blobMiB = Number(process.env.COG_TEST_FAULT_BLOB_MIB || 256);
const chunkMiB = Number(process.env.COG_TEST_FAULT_CHUNK_MIB || 16);
const policy: RetryPolicy = {
  attempts: 8,
  initialDelayMs: 50,
  factor: 2,
  maxDelayMs: 1000,
  jitter: 0.2,
  maxRetryAfterMs: 1500,
};
const tempDir = tempDirsRemovedAfterTests();
const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
let tb: Testbed;
let blob: Blob;

before(async () => {
  tb = await ensureTestbed();
  blob = await writePseudoRandomFile(
    join(await tempDir('cogts-faults-'), 'blob.bin'),
    blobMiB * MiB,
    `faults-${run}`,
  );
});

/** sha256 of the blob as the registry serves it, streamed. */
async function servedDigest(repo: string, digest: string): Promise<string> {
  const res = await request(`http://${tb.registry}/v2/${repo}/blobs/${digest}`);
  assert.equal(res.statusCode, 200);
  const hash = createHash('sha256');
  for await (const chunk of res.body as AsyncIterable<Buffer>) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

describe('large blob uploads', () => {
  let c: RegistryClient;
  let proxy: FaultProxy;
  before(async () => {
    c = new RegistryClient({ env: {}, keychain: anonymousKeychain, retry: policy });
    proxy = await startFaultProxy(tb.registry, {
      seed: 20261122,
      faults: { cutPatch: 0.08, status500: 0.03, status429: 0.02, cutPatchNumbers: [2] },
    });
  });
  after(async () => {
    await c.close();
    await proxy.close();
  });

  test(`a ${blobMiB} MiB blob lands through cuts, 500s and 429s, resuming rather than restarting`, async (t) => {
    const repo = `cogts-test/faults-${run}`;
    const started = Date.now();
    const stats = await uploadBlob(
      c,
      parseReference(`${proxy.host}/${repo}`),
      fileBlobSource(blob.path, blob.digest, blob.size),
      { chunkSize: chunkMiB * MiB, multipartThreshold: 0 },
    );
    const seconds = (Date.now() - started) / 1000;
    const received = (proxy.stats.bodyBytes.PATCH ?? 0) + (proxy.stats.bodyBytes.PUT ?? 0);
    const overhead = (received - blob.size) / blob.size;
    t.diagnostic(
      `faults ${JSON.stringify(proxy.stats.faults)}, resumes ${stats.resumes}, restarts ${stats.restarts}, ` +
        `sent ${stats.bytesSent}, proxy received ${received}, overhead ${(overhead * 100).toFixed(2)} %, ` +
        `${(blob.size / MiB / seconds).toFixed(1)} MiB/s`,
    );
    assert.ok(proxy.stats.faults.cuts >= 1, 'at least one chunk was cut');
    assert.ok(stats.resumes >= 1);
    assert.equal(stats.restarts, 0);
    assert.ok(overhead < 0.1, `overhead ${(overhead * 100).toFixed(2)} % is not under 10 %`);
    assert.equal(await blobExists(c, parseReference(`${tb.registry}/${repo}`), blob.digest), true);
    assert.equal(await servedDigest(repo, blob.digest), blob.digest);
  });

  test('without faults the same blob streams straight to the registry', async (t) => {
    const repo = `cogts-test/fast-${run}`;
    const started = Date.now();
    const progress: number[] = [];
    const stats = await uploadBlob(
      c,
      parseReference(`${tb.registry}/${repo}`),
      fileBlobSource(blob.path, blob.digest, blob.size),
      { chunkSize: chunkMiB * MiB, multipartThreshold: 0, onProgress: (done) => progress.push(done) },
    );
    const seconds = (Date.now() - started) / 1000;
    t.diagnostic(
      `${(blob.size / MiB / seconds).toFixed(1)} MiB/s in ${Math.ceil(blob.size / (chunkMiB * MiB))} chunks`,
    );
    assert.equal(stats.bytesSent, blob.size);
    assert.equal(progress.at(-1), blob.size);
    assert.equal(await servedDigest(repo, blob.digest), blob.digest);
  });

  test('cancelling stops the upload promptly and asks the registry to drop its session', async (t) => {
    const plain = await startFaultProxy(tb.registry);
    t.after(() => plain.close());
    const controller = new AbortController();
    const repo = `cogts-test/cancel-${run}`;
    let sent = 0;
    const upload = uploadBlob(
      c,
      parseReference(`${plain.host}/${repo}`),
      fileBlobSource(blob.path, blob.digest, blob.size),
      {
        chunkSize: chunkMiB * MiB,
        multipartThreshold: 0,
        signal: controller.signal,
        onProgress: (done) => {
          sent = done;
          if (done > 4 * MiB) controller.abort();
        },
      },
    );
    const aborted = Date.now();
    await assert.rejects(upload, (err: Error) => err.name === 'AbortError');
    assert.ok(Date.now() - aborted < 5000);
    assert.ok(sent < blob.size);
    assert.equal(await blobExists(c, parseReference(`${tb.registry}/${repo}`), blob.digest), false);
    // distribution refuses the DELETE while it still writes the cut chunk (its state no longer matches
    // the session's size) and purges the session itself later; the DELETE is asked for either way
    const deletes = plain.stats.requests.filter((r) => r.method === 'DELETE');
    assert.equal(deletes.length, 1, JSON.stringify(plain.stats.requests));
  });

  test('an upload cancelled between requests deletes its session', async () => {
    const ref = parseReference(`${tb.registry}/cogts-test/cancel-between-${run}`);
    const session = await startUpload(c, ref);
    await assert.rejects(
      uploadBlob(c, ref, fileBlobSource(blob.path, blob.digest, blob.size), {
        chunkSize: chunkMiB * MiB,
        multipartThreshold: 0,
        session,
        signal: AbortSignal.abort(),
      }),
      (err: Error) => err.name === 'AbortError',
    );
    const status = await request(new URL(session.location, `http://${tb.registry}`));
    await status.body.dump();
    assert.equal(status.statusCode, 404, 'the session is gone');
  });

  test('when a cut chunk reached the registry in part and it drops the session, the upload starts over', async () => {
    const medium = await writePseudoRandomFile(
      join(await tempDir('cogts-faults-medium-'), 'b'),
      40 * MiB,
      `restart-${run}`,
    );
    const streaming = await startFaultProxy(tb.registry, {
      faults: { cutPatchNumbers: [3], streamPatches: true },
    });
    try {
      const repo = `cogts-test/restart-${run}`;
      const stats = await uploadBlob(
        c,
        parseReference(`${streaming.host}/${repo}`),
        fileBlobSource(medium.path, medium.digest, medium.size),
        { chunkSize: 8 * MiB, multipartThreshold: 0 },
      );
      assert.equal(streaming.stats.faults.cuts, 1);
      assert.equal(stats.restarts, 1);
      assert.equal(await servedDigest(repo, medium.digest), medium.digest);
    } finally {
      await streaming.close();
    }
  });

  test('a source whose bytes do not match the claimed digest is not committed', async () => {
    const small = await writePseudoRandomFile(
      join(await tempDir('cogts-faults-small-'), 'b'),
      3 * MiB,
      `x-${run}`,
    );
    const claimed = `sha256:${'0'.repeat(64)}`;
    const repo = parseReference(`${tb.registry}/cogts-test/mismatch-${run}`);
    await assert.rejects(
      uploadBlob(c, repo, fileBlobSource(small.path, claimed, small.size), {
        chunkSize: MiB,
        multipartThreshold: 0,
      }),
      (err: unknown) => err instanceof CogError && /has the content of/.test(err.message),
    );
    assert.equal(await blobExists(c, repo, claimed), false);
  });
});

describe('chunk limits a registry states', () => {
  let c: RegistryClient;
  let medium: Blob;
  before(async () => {
    c = new RegistryClient({ env: {}, keychain: anonymousKeychain, retry: policy });
    medium = await writePseudoRandomFile(
      join(await tempDir('cogts-limits-'), 'b'),
      40 * MiB,
      `limits-${run}`,
    );
  });
  after(() => c.close());

  /** Uploads the blob through a proxy stating `limits`; resolves with the PATCH bodies' count and sizes. */
  async function uploadWithLimits(name: string, limits: { min?: number; max?: number }, chunkSize: number) {
    const proxy = await startFaultProxy(tb.registry, { faults: { chunkLimits: limits } });
    try {
      const repo = `cogts-test/limits-${name}-${run}`;
      const stats = await uploadBlob(
        c,
        parseReference(`${proxy.host}/${repo}`),
        fileBlobSource(medium.path, medium.digest, medium.size),
        { chunkSize, multipartThreshold: 0 },
      );
      assert.equal(await servedDigest(repo, medium.digest), medium.digest);
      const patches = proxy.stats.requests.filter((r) => r.method === 'PATCH');
      return { stats, statuses: patches.map((r) => r.status), sent: proxy.stats.bodyBytes.PATCH ?? 0 };
    } finally {
      await proxy.close();
    }
  }

  test('a stated maximum sets the chunks (less 64 KiB), over the preferred size; none is refused', async () => {
    const max = 8 * MiB;
    const { stats, statuses, sent } = await uploadWithLimits('max', { max }, 4 * MiB);
    // 40 MiB in chunks of 8 MiB − 64 KiB: 6 PATCHes (4 MiB chunks would be 10, 8 MiB ones 5)
    assert.equal(statuses.length, 6);
    assert.ok(
      statuses.every((s) => s === 202),
      statuses.join(),
    );
    assert.equal(stats.wholeBlobFallback, false);
    assert.equal(sent, medium.size);
  });

  test('a stated minimum raises a smaller preferred size', async () => {
    const { statuses, sent } = await uploadWithLimits('min', { min: 20 * MiB }, 4 * MiB);
    assert.deepEqual(statuses, [202, 202]);
    assert.equal(sent, medium.size);
  });

  test('a body limit in front of the registry (413): chunks are halved until they pass', async () => {
    const proxy = await startFaultProxy(tb.registry, { faults: { bodyLimit: 6 * MiB } });
    try {
      const repo = `cogts-test/limit-413-${run}`;
      const stats = await uploadBlob(
        c,
        parseReference(`${proxy.host}/${repo}`),
        fileBlobSource(medium.path, medium.digest, medium.size),
        { chunkSize: 16 * MiB, multipartThreshold: 0 },
      );
      assert.equal(await servedDigest(repo, medium.digest), medium.digest);
      // 16 MiB refused, 8 MiB refused, then 40 MiB in 4 MiB chunks
      assert.equal(stats.tooLarge, 2);
      const patches = proxy.stats.requests.filter((r) => r.method === 'PATCH');
      assert.deepEqual(
        patches.map((r) => r.status),
        [413, 413, ...Array.from({ length: 10 }, () => 202)],
      );
    } finally {
      await proxy.close();
    }
  });

  test('a blob refused as too large in one PUT goes up in chunks on the same session', async () => {
    const small = await writePseudoRandomFile(
      join(await tempDir('cogts-limit-small-'), 'b'),
      3 * MiB,
      `limit-small-${run}`,
    );
    const proxy = await startFaultProxy(tb.registry, { faults: { bodyLimit: MiB + 100_000 } });
    try {
      const repo = `cogts-test/limit-put-${run}`;
      const stats = await uploadBlob(
        c,
        parseReference(`${proxy.host}/${repo}`),
        fileBlobSource(small.path, small.digest, small.size),
      );
      assert.equal(await servedDigest(repo, small.digest), small.digest);
      // the PUT (3 MiB) refused, then 1.5 MiB chunks refused, then 1 MiB chunks (the floor) pass
      assert.equal(stats.tooLarge, 2);
      assert.deepEqual(
        proxy.stats.requests
          .filter((r) => r.method === 'PUT' || r.method === 'PATCH')
          .map((r) => r.method + r.status),
        ['PUT413', 'PATCH413', 'PATCH202', 'PATCH202', 'PATCH202', 'PUT201'],
      );
      assert.equal(proxy.stats.requests.filter((r) => r.method === 'POST').length, 1, 'one session');
    } finally {
      await proxy.close();
    }
  });
});
