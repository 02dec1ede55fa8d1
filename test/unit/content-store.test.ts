// The session's containerd content service, over real gRPC: store selection by metadata, streamed and
// ranged reads, verified writes, and the status codes BuildKit's content proxy acts on.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { contentService, storeIdHeader } from '../../src/buildkit/content-store.js';
import { serviceDefinition } from '../../src/buildkit/grpc-services.js';
import { readChunkSize } from '../../src/image/content-dir.js';
import { taggedManifest, withTag } from '../../src/buildkit/local-cache.js';

const serviceName = 'containerd.services.content.v1.Content';
const sha256 = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let root: string;
let readOnly: string;
let writable: string;
let server: grpc.Server;
let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
const blob = Buffer.alloc(Math.floor(readChunkSize * 2.5));
for (let i = 0; i < blob.length; i++) blob[i] = (i * 31) % 251;
const blobDigest = sha256(blob);

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cogts-content-'));
  readOnly = join(root, 'ro');
  writable = join(root, 'rw');
  await mkdir(join(readOnly, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(readOnly, 'blobs', 'sha256', blobDigest.slice(7)), blob);
  const service = contentService({
    'oci:ro': { root: readOnly, writable: false },
    'local:rw': { root: writable, writable: true },
  });
  server = new grpc.Server();
  server.addService(serviceDefinition(service.name), service.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const Client = grpc.makeGenericClientConstructor(serviceDefinition(serviceName), serviceName);
  client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as never;
});

after(async () => {
  client.close();
  server.forceShutdown();
  await rm(root, { recursive: true, force: true });
});

function md(store: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(storeIdHeader, store);
  return metadata;
}

function unary<T>(method: string, request: unknown, store: string): Promise<T> {
  return new Promise((resolve, reject) => {
    (client[method] as (...a: unknown[]) => void).call(
      client,
      request,
      md(store),
      (err: Error | null, res: T) => (err ? reject(err) : resolve(res)),
    );
  });
}

function read(store: string, request: unknown): Promise<{ offset: number; data: Uint8Array }[]> {
  return new Promise((resolve, reject) => {
    const messages: { offset: number; data: Uint8Array }[] = [];
    const call = (client.Read as (...a: unknown[]) => grpc.ClientReadableStream<never>).call(
      client,
      request,
      md(store),
    );
    call.on('data', (m: { offset?: number; data?: Uint8Array }) =>
      messages.push({ offset: m.offset ?? 0, data: m.data ?? new Uint8Array() }),
    );
    call.on('error', reject);
    call.on('end', () => resolve(messages));
  });
}

/** Runs a Write stream: sends each request after the previous answer; resolves with the answers. */
function write(store: string, requests: unknown[]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const answers: Record<string, unknown>[] = [];
    const call = (client.Write as (...a: unknown[]) => grpc.ClientDuplexStream<unknown, never>).call(
      client,
      md(store),
    );
    let next = 0;
    const sendNext = () => {
      if (next < requests.length) call.write(requests[next++]);
      else call.end();
    };
    call.on('data', (answer: Record<string, unknown>) => {
      answers.push(answer);
      sendNext();
    });
    call.on('error', reject);
    call.on('end', () => resolve(answers));
    sendNext();
  });
}

const code = (c: number) => (err: unknown) => (err as grpc.ServiceError).code === c;

describe('content store service', () => {
  test('Info answers size; a missing blob is NotFound (5); an unknown store is NotFound', async () => {
    const info = await unary<{ info: { digest: string; size: number } }>(
      'Info',
      { digest: blobDigest },
      'oci:ro',
    );
    assert.equal(info.info.digest, blobDigest);
    assert.equal(info.info.size, blob.length);
    await assert.rejects(unary('Info', { digest: sha256(Buffer.from('nope')) }, 'oci:ro'), code(5));
    await assert.rejects(unary('Info', { digest: blobDigest }, 'oci:other'), code(5));
    await assert.rejects(unary('Info', { digest: 'md5:abc' }, 'oci:ro'), code(3));
  });

  test('Read streams the blob in chunks, from an offset and for a size', async () => {
    const whole = await read('oci:ro', { digest: blobDigest });
    assert.equal(whole.length, 3, 'a 2.5 MiB blob comes in three 1 MiB chunks');
    assert.deepEqual(
      whole.map((m) => m.offset),
      [0, readChunkSize, 2 * readChunkSize],
    );
    assert.ok(Buffer.concat(whole.map((m) => m.data)).equals(blob));

    const range = await read('oci:ro', { digest: blobDigest, offset: 1000, size: 5000 });
    assert.equal(range[0]?.offset, 1000);
    assert.ok(Buffer.concat(range.map((m) => m.data)).equals(blob.subarray(1000, 6000)));

    const tail = await read('oci:ro', { digest: blobDigest, offset: blob.length - 10, size: 100 });
    assert.ok(Buffer.concat(tail.map((m) => m.data)).equals(blob.subarray(blob.length - 10)));

    assert.deepEqual(await read('oci:ro', { digest: blobDigest, offset: blob.length }), [], 'EOF probe');
    await assert.rejects(read('oci:ro', { digest: blobDigest, offset: blob.length + 1 }), code(11));
    await assert.rejects(read('oci:ro', { digest: sha256(Buffer.from('nope')) }), code(5));
  });

  test('Write verifies the digest on commit: a wrong one is refused and nothing is stored', async () => {
    const data = Buffer.from('hello content store');
    const wrong = sha256(Buffer.from('something else'));
    await assert.rejects(
      write('local:rw', [
        { action: 0, ref: 'wrong', total: data.length, expected: wrong },
        { action: 1, offset: 0, data },
        { action: 2, offset: data.length, total: data.length, expected: wrong },
      ]),
      code(9),
    );
    assert.equal(existsSync(join(writable, 'blobs', 'sha256', wrong.slice(7))), false);
    assert.deepEqual(await readdir(join(writable, 'ingest')), [], 'the temp file is gone');
  });

  test('Write with a wrong size is refused', async () => {
    const data = Buffer.from('sized');
    await assert.rejects(
      write('local:rw', [
        { action: 0, ref: 'sized', total: 99 },
        { action: 2, offset: 0, data, total: 99 },
      ]),
      code(9),
    );
  });

  test('Write streams chunks, answers STAT, commits into blobs/sha256, then AlreadyExists (6)', async () => {
    const data = Buffer.alloc(300_000, 7);
    const digest = sha256(data);
    const answers = await write('local:rw', [
      { action: 0, ref: 'good', total: data.length, expected: digest },
      { action: 1, offset: 0, data: data.subarray(0, 100_000) },
      { action: 1, offset: 100_000, data: data.subarray(100_000) },
      { action: 0 },
      { action: 2, offset: data.length, total: data.length, expected: digest },
    ]);
    assert.equal(answers[0]?.offset ?? 0, 0, 'a new write starts at 0 (zero is left off the wire)');
    assert.equal(answers[1]?.offset, 100_000);
    assert.equal(answers[3]?.offset, data.length);
    assert.equal(answers[3]?.digest, digest, 'STAT reports the digest so far');
    assert.equal(answers[4]?.action, 2);
    assert.equal(answers[4]?.offset, data.length);
    assert.equal(answers[4]?.digest, digest);
    const info = await unary<{ info: { size: number } }>('Info', { digest }, 'local:rw');
    assert.equal(info.info.size, data.length);
    await assert.rejects(write('local:rw', [{ action: 0, ref: 'again', expected: digest }]), code(6));
  });

  test('a write out of order is OutOfRange (11); a read-only store refuses writes (7)', async () => {
    await assert.rejects(
      write('local:rw', [
        { action: 0, ref: 'gap' },
        { action: 1, offset: 10, data: Buffer.from('x') },
      ]),
      code(11),
    );
    await assert.rejects(write('oci:ro', [{ action: 0, ref: 'ro' }]), code(7));
  });

  test('local cache index: tags are found like buildctl and replaced on export', () => {
    const first = { mediaType: 'm', digest: 'sha256:1', size: 1 };
    const second = { mediaType: 'm', digest: 'sha256:2', size: 2 };
    const one = withTag(undefined, first, 'latest');
    assert.equal(one.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(taggedManifest(one, 'latest')?.digest, 'sha256:1');
    const two = withTag(withTag(one, first, 'v1'), second, 'latest');
    assert.deepEqual(
      two.manifests.map((m) => [m.digest, m.annotations?.['org.opencontainers.image.ref.name']]),
      [
        ['sha256:1', 'v1'],
        ['sha256:2', 'latest'],
      ],
    );
  });
});
