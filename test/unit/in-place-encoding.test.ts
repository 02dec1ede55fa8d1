// Bulk data is framed in place (buffer-pool.ts); the bytes must equal what the codec writes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { BufferPool, encodeAroundPayload, varintField } from '../../src/buildkit/buffer-pool.js';
import { dataHeadroom, dataPacketInPlace } from '../../src/buildkit/filesync.js';
import { bytesTag, tunnelHeadroom } from '../../src/buildkit/session.js';
import { codec } from '../../src/proto/schema.js';

const lengths = [1, 127, 128, 16_383, 16_384, 131_072];
const ids = [0, 1, 127, 128, 300_000, 2 ** 31 - 1];

describe('in-place message framing', () => {
  for (const length of lengths) {
    for (const id of ids) {
      test(`DATA packet, id ${id}, ${length} bytes equals the codec's encoding`, () => {
        const payload = randomBytes(length);
        const buffer = Buffer.alloc(dataHeadroom + length, 0xee);
        payload.copy(buffer, dataHeadroom);
        const framed = dataPacketInPlace(buffer, length, id);
        const expected = codec('fsutil.types.Packet').encode({ type: 2, ID: id, data: payload });
        assert.deepEqual(Buffer.from(framed), Buffer.from(expected));
        assert.equal(framed.buffer, buffer.buffer, 'a view of the read buffer, not a copy');
      });
    }
    test(`BytesMessage of ${length} bytes equals the codec's encoding`, () => {
      const payload = randomBytes(length);
      const buffer = Buffer.alloc(tunnelHeadroom + length);
      payload.copy(buffer, tunnelHeadroom);
      const framed = encodeAroundPayload(buffer, tunnelHeadroom, length, [], bytesTag);
      assert.deepEqual(
        Buffer.from(framed),
        Buffer.from(codec('moby.buildkit.v1.BytesMessage').encode({ data: payload })),
      );
    });
  }

  test('too little headroom is an error, not a corrupt message', () => {
    assert.throws(() => encodeAroundPayload(Buffer.alloc(2 + 200), 2, 200, [0x08, 0x02], 0x22), /headroom/);
  });

  test('a zero varint field is left out, as proto3 does', () => {
    assert.deepEqual(varintField(3, 0), []);
    assert.deepEqual(varintField(3, 300), [0x18, 0xac, 0x02]);
  });
});

describe('BufferPool', () => {
  test('take() waits for a buffer once max are out, and gets the one given back', async () => {
    const pool = new BufferPool(16, 1, 4);
    const first = await pool.take();
    assert.equal(first.length, 20);
    let second: Buffer | undefined;
    const waiting = pool.take().then((b) => (second = b));
    await new Promise((r) => setImmediate(r));
    assert.equal(second, undefined, 'still waiting');
    pool.give(first);
    await waiting;
    assert.equal(second, first);
  });

  test('close() fails the waiters and later takes', async () => {
    const pool = new BufferPool(16, 1);
    await pool.take();
    const waiting = pool.take();
    pool.close(new Error('transfer failed'));
    await assert.rejects(waiting, /transfer failed/);
    await assert.rejects(pool.take(), /transfer failed/);
  });

  test('takeNow() allocates past max rather than wait', async () => {
    const pool = new BufferPool(8, 1);
    const a = pool.takeNow();
    const b = pool.takeNow();
    assert.notEqual(a, b);
  });
});
