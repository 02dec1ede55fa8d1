// The deterministic encoding rules, checked byte by byte (the e2e corpus checks them against buildkitd).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import protobuf from 'protobufjs';
import { decodeMessage, encodeMessage } from '../../src/proto/codec.js';
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

// Random messages of every type in proto/, encoded by us and decoded both by our schema-reading
// decoder and by protobufjs' generated decoder and converter: the two must agree.
describe('decoding', () => {
  const root = codec('pb.Op').type.root;
  const types: protobuf.Type[] = [];
  const walk = (ns: protobuf.NamespaceBase) => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) types.push(nested);
      if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) walk(nested);
    }
  };
  walk(root);

  let seed = 1;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)] as T;

  function scalar(type: string): unknown {
    switch (type) {
      case 'string':
        return pick(['', 'a', 'héllo', 'x'.repeat(200)]);
      case 'bytes':
        return Buffer.from(pick(['', 'ab', '\x00\xff']), 'latin1');
      case 'bool':
        return pick([true, false]);
      case 'double':
      case 'float':
        return pick([0, 1.5, -2.25]);
      case 'uint32':
      case 'fixed32':
        return pick([0, 1, 300, 4294967295]);
      case 'uint64':
      case 'fixed64':
        return pick([0, 1, 2 ** 40, 2 ** 53 - 1]);
      default: // signed
        return pick([0, 1, -1, 300, -300000, 2147483647]);
    }
  }

  function value(field: protobuf.Field, typeName: string, depth: number): unknown {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Enum) return pick(Object.values(resolved.values));
    if (resolved instanceof protobuf.Type) return message(resolved, depth + 1);
    const v = scalar(typeName);
    return typeName.endsWith('64') && typeof v === 'number' && typeName.startsWith('s') ? -Math.abs(v) : v;
  }

  function message(type: protobuf.Type, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (depth > 3) return out;
    const oneofsSet = new Set<string>();
    for (const field of type.fieldsArray.map((f) => f.resolve())) {
      if (random() < 0.35) continue;
      const oneof = field.partOf;
      if (oneof && oneof.fieldsArray.length > 1) {
        if (oneofsSet.has(oneof.name)) continue;
        oneofsSet.add(oneof.name);
      }
      if (field instanceof protobuf.MapField) {
        const entries: Record<string, unknown> = {};
        const n = Math.floor(random() * 3);
        for (let i = 0; i < n; i++) {
          const key =
            field.keyType === 'string' ? `k${i}` : field.keyType === 'bool' ? String(i === 0) : String(i);
          entries[key] = value(field, field.type, depth);
        }
        out[field.name] = entries;
      } else if (field.repeated) {
        out[field.name] = Array.from({ length: Math.floor(random() * 3) }, () =>
          value(field, field.type, depth),
        );
      } else {
        out[field.name] = value(field, field.type, depth);
      }
    }
    return out;
  }

  const hasLongMapKey = (type: protobuf.Type, seen = new Set<protobuf.Type>()): boolean => {
    if (seen.has(type)) return false;
    seen.add(type);
    return type.fieldsArray.some((f) => {
      f.resolve();
      if (f instanceof protobuf.MapField && f.keyType.endsWith('64')) return true;
      return f.resolvedType instanceof protobuf.Type && hasLongMapKey(f.resolvedType, seen);
    });
  };

  test('every type of the schema: ours agrees with protobufjs on random messages', () => {
    assert.ok(types.length > 100, `${types.length} types`);
    let compared = 0;
    for (const type of types) {
      // protobufjs turns 64-bit map keys into 8-character hash strings; ours into decimal strings
      if (hasLongMapKey(type)) continue;
      for (let i = 0; i < 5; i++) {
        const bytes = encodeMessage(type, message(type, 0));
        const theirs = type.toObject(type.decode(bytes), { longs: Number, enums: Number, defaults: false });
        assert.deepEqual(decodeMessage(type, bytes), theirs, `${type.fullName}`);
        compared++;
      }
    }
    assert.ok(compared > 500, `${compared} messages compared`);
  });

  test('unpacked repeated numbers, unknown fields and 64-bit map keys', () => {
    const meta = codec('pb.Meta').type;
    const validExitCodes = meta.fields.validExitCodes!.id;
    const w = protobuf.Writer.create();
    w.uint32((validExitCodes << 3) | 0).int32(3); // unpacked
    w.uint32((validExitCodes << 3) | 0).int32(-1);
    w.uint32((999 << 3) | 2).string('from a newer buildkitd'); // unknown: skipped
    w.uint32((validExitCodes << 3) | 2)
      .fork()
      .int32(7)
      .int32(8)
      .ldelim(); // packed
    assert.deepEqual(decodeMessage(meta, w.finish()), { validExitCodes: [3, -1, 7, 8] });

    const withLongKeys = types.find((t) =>
      t.fieldsArray.some((f) => f instanceof protobuf.MapField && f.keyType === 'int64'),
    );
    assert.ok(withLongKeys);
    const field = withLongKeys.fieldsArray.find((f) => f instanceof protobuf.MapField)!;
    const bytes = encodeMessage(withLongKeys, { [field.name]: { '42': {}, '-7': {} } });
    assert.deepEqual(
      Object.keys(decodeMessage<Record<string, object>>(withLongKeys, bytes)[field.name]!).sort(),
      ['-7', '42'],
    );
  });
});
