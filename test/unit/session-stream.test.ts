// The Control.Session stream over plain HTTP/2: framing in place, messages split across chunks,
// status trailers. Served here by a local HTTP/2 server that behaves like buildkitd's.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encodeAroundPayload } from '../../src/buildkit/buffer-pool.js';
import { bytesTag, tunnelHeadroom } from '../../src/buildkit/session.js';
import { SessionStream, bytesMessageData } from '../../src/buildkit/session-stream.js';
import { codec } from '../../src/proto/schema.js';

/** gRPC frame of a BytesMessage holding `data`. */
function frame(data: Uint8Array): Buffer {
  const message = Buffer.from(codec('moby.buildkit.v1.BytesMessage').encode({ data }));
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** A server on a unix socket; `handle` gets each stream and its request headers. */
async function serve(
  handle: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): Promise<{ path: string; close: () => Promise<void> }> {
  const server = http2.createServer();
  server.on('stream', handle);
  const path = join(tmpdir(), `cog-ss-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function open(path: string, metadata: Record<string, string | string[]> = {}) {
  return new SessionStream({ kind: 'unix', path, display: `unix://${path}` }, metadata);
}

describe('SessionStream', () => {
  test('sends metadata as headers, repeated keys as repeated headers', async () => {
    let seen: http2.IncomingHttpHeaders | undefined;
    const server = await serve((stream, headers) => {
      seen = headers;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end();
    });
    const s = open(server.path, {
      'x-docker-expose-session-uuid': 'abc',
      'x-docker-expose-session-grpc-method': ['/a/B', '/c/D'],
    });
    await new Promise((resolve) => s.once('end', resolve));
    s.cancel();
    await server.close();
    assert.equal(seen?.[':path'], '/moby.buildkit.v1.Control/Session');
    assert.equal(seen?.['content-type'], 'application/grpc');
    assert.equal(seen?.['x-docker-expose-session-uuid'], 'abc');
    // Node joins repeated request headers with ", " (and Go reads them as separate values)
    assert.equal(seen?.['x-docker-expose-session-grpc-method'], '/a/B, /c/D');
  });

  test('messages written in place arrive framed; messages split across chunks are reassembled', async () => {
    const payloads = [randomBytes(1), randomBytes(300), randomBytes(70_000), randomBytes(5)];
    const received: Buffer[] = [];
    const server = await serve((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('data', (chunk: Buffer) => received.push(chunk));
      stream.on('end', () => {
        // echo every frame back, cut into 7-byte pieces
        const all = Buffer.concat(received);
        for (let at = 0; at < all.length; at += 7) stream.write(all.subarray(at, at + 7));
        stream.end();
      });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    });
    const s = open(server.path);
    const echoed: Buffer[] = [];
    s.on('message', (data: Buffer) => echoed.push(Buffer.from(data)));
    let written = 0;
    for (const payload of payloads) {
      const buffer = Buffer.alloc(tunnelHeadroom + payload.length);
      payload.copy(buffer, tunnelHeadroom);
      s.writeInPlace(
        encodeAroundPayload(buffer, tunnelHeadroom, payload.length, [], bytesTag),
        () => written++,
      );
    }
    s.end();
    await new Promise((resolve) => s.once('end', resolve));
    s.cancel();
    await server.close();
    assert.equal(written, payloads.length, 'every write completed');
    assert.deepEqual(
      Buffer.concat(received),
      Buffer.concat(payloads.map(frame)),
      'the server saw gRPC frames',
    );
    assert.deepEqual(echoed, payloads);
  });

  test('a non-zero grpc-status in the trailers is an error carrying grpc-message', async () => {
    const server = await serve((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () =>
        stream.sendTrailers({ 'grpc-status': '13', 'grpc-message': 'session%20lost' }),
      );
      stream.end();
    });
    const s = open(server.path);
    const err = await new Promise<Error>((resolve) => s.once('error', resolve));
    s.cancel();
    await server.close();
    assert.match(err.message, /session lost/);
  });

  test('a dead socket is an error naming the address', async () => {
    const s = open(join(tmpdir(), 'cog-ss-nothing-here.sock'));
    const err = await new Promise<Error>((resolve) => s.once('error', resolve));
    s.cancel();
    assert.match(err.message, /cog-ss-nothing-here\.sock/);
  });

  test('bytesMessageData reads field 1 and skips unknown fields', () => {
    const data = randomBytes(200);
    const encoded = Buffer.concat([
      Buffer.from([0x10, 0x96, 0x01]),
      Buffer.from(codec('moby.buildkit.v1.BytesMessage').encode({ data })),
    ]);
    assert.deepEqual(Buffer.from(bytesMessageData(encoded)), data);
    assert.equal(bytesMessageData(Buffer.alloc(0)).length, 0);
  });
});
