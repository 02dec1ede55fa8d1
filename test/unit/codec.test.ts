// The deterministic encoding rules, checked byte by byte (the e2e corpus checks them against buildkitd).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { codec } from '../../src/proto/schema.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const digest = `sha256:${'a'.repeat(64)}`;

describe('deterministic protobuf encoding', () => {
  test('the terminal op is 75 bytes: inputs only, index 0 left out', () => {
    const bytes = codec('pb.Op').encode({ inputs: [{ digest, index: 0 }] });
    assert.equal(bytes.length, 75);
    assert.equal(hex(bytes.subarray(0, 4)), '0a490a47');
  });

  test('plain fields come first by number, the oneof member last', () => {
    const bytes = codec('pb.Op').encode({
      source: { identifier: 'x' },
      platform: { OS: 'linux', Architecture: 'amd64' },
      constraints: {},
    });
    const platformAt = bytes.indexOf(0x52);
    const constraintsAt = bytes.indexOf(0x5a);
    const sourceAt = bytes.lastIndexOf(0x1a);
    assert.equal(platformAt, 0);
    assert.ok(constraintsAt > platformAt && sourceAt > constraintsAt);
    assert.equal(
      hex(bytes.subarray(constraintsAt, constraintsAt + 2)),
      '5a00',
      'an empty message is still written',
    );
  });

  test('map entries are sorted by key and carry key and value even when empty', () => {
    const bytes = codec('pb.SourceOp').encode({ attrs: { b: '2', a: '' } });
    // entry a: 12 05 0a 01 61 12 00 ; entry b: 12 06 0a 01 62 12 01 32
    assert.equal(hex(bytes), '12050a016112001206' + '0a0162120132');
  });

  test('zero scalars are left out; -1 is a 10-byte varint', () => {
    assert.equal(hex(codec('pb.Input').encode({ digest: '', index: 0 })), '');
    assert.equal(hex(codec('pb.Input').encode({ index: -1 })), '10ffffffffffffffffff01');
  });

  test('"0" is a zero only in 64-bit integer fields, not in strings', () => {
    assert.equal(hex(codec('pb.Input').encode({ index: '0' })), '');
    assert.equal(hex(codec('pb.Meta').encode({ user: '0' })), '220130');
  });

  test('a oneof member is written even when it holds a zero value', () => {
    assert.equal(hex(codec('pb.UserOpt').encode({ byID: 0 })), '1000');
  });

  test('repeated numbers are packed; empty repeated fields are left out', () => {
    assert.equal(hex(codec('pb.Meta').encode({ validExitCodes: [0, 3], args: [] })), '62020003');
  });

  test('decoding gives back the message', () => {
    const op = {
      inputs: [{ digest, index: 2 }],
      exec: { meta: { args: ['sh'], cwd: '/' } },
      constraints: {},
    };
    const decoded = codec('pb.Op').decode(codec('pb.Op').encode(op));
    assert.deepEqual(decoded.inputs, [{ digest, index: 2 }]);
    assert.deepEqual(decoded.exec?.meta?.args, ['sh']);
  });
});
