/**
 * Protobuf encoding that matches protobuf-go's deterministic Marshal byte for byte, so that the
 * digest of an op we marshal equals the digest buildkitd computes after re-marshalling it:
 *   - fields that are not in a oneof come first, in field-number order, then the set oneof member;
 *   - proto3 zero values (0, '', false, empty bytes, empty repeated) are left out, except a oneof
 *     member, which is written whenever it is set;
 *   - map entries are sorted by key and always carry both key and value;
 *   - repeated numeric fields are packed.
 * Decoding uses protobufjs as is; longs become numbers and enums stay numbers.
 */
import protobuf from 'protobufjs';

type Plain = Record<string, unknown>;

const wireType: Record<string, number> = {
  double: 1,
  float: 5,
  int32: 0,
  uint32: 0,
  sint32: 0,
  fixed32: 5,
  sfixed32: 5,
  int64: 0,
  uint64: 0,
  sint64: 0,
  fixed64: 1,
  sfixed64: 1,
  bool: 0,
  string: 2,
  bytes: 2,
};

const resolvedTypes = new WeakMap<protobuf.Field, protobuf.Type | protobuf.Enum | null>();

/**
 * The message or enum type of a field, null for a scalar. Looked up here rather than with
 * Field.resolve(), which also sets a default on the parent type's generated constructor, and so
 * generates and compiles that constructor (~8 ms of every build, CPU profile).
 */
function typeOf(field: protobuf.Field): protobuf.Type | protobuf.Enum | null {
  let found = resolvedTypes.get(field);
  if (found === undefined) {
    found = field.type in wireType ? null : (field.parent as protobuf.Type).lookupTypeOrEnum(field.type);
    resolvedTypes.set(field, found);
  }
  return found;
}

const orderCache = new WeakMap<protobuf.Type, protobuf.Field[]>();

/** Fields in the order protobuf-go writes them: plain fields by number, then oneof members by number. */
function orderedFields(type: protobuf.Type): protobuf.Field[] {
  let fields = orderCache.get(type);
  if (!fields) {
    const byId = (a: protobuf.Field, b: protobuf.Field) => a.id - b.id;
    const all = type.fieldsArray;
    const inOneof = (f: protobuf.Field) => f.partOf !== null && !isSyntheticOneof(f.partOf);
    fields = [...all.filter((f) => !inOneof(f)).sort(byId), ...all.filter(inOneof).sort(byId)];
    orderCache.set(type, fields);
  }
  return fields;
}

/** proto3 `optional` fields live in a synthetic oneof named `_<field>`; they behave like plain fields. */
function isSyntheticOneof(oneof: protobuf.OneOf): boolean {
  return oneof.fieldsArray.length === 1 && oneof.name === `_${oneof.fieldsArray[0]?.name ?? ''}`;
}

/** Whether a scalar holds its proto3 default. A decimal string is a number only in 64-bit fields. */
function isZero(scalarType: string, value: unknown): boolean {
  if (value === 0 || value === '' || value === false) return true;
  if (typeof value === 'bigint') return value === 0n;
  if (value instanceof Uint8Array) return value.length === 0;
  return value === '0' && scalarType.endsWith('64') && scalarType !== 'double';
}

function enumNumber(field: protobuf.Field, value: unknown): number {
  if (typeof value === 'number') return value;
  const enumType = typeOf(field);
  if (typeof value === 'string' && enumType instanceof protobuf.Enum && value in enumType.values) {
    return enumType.values[value] as number;
  }
  throw new TypeError(
    `${field.fullName}: ${String(value)} is not a value of ${enumType?.fullName ?? 'enum'}`,
  );
}

function writeScalar(w: protobuf.Writer, scalarType: string, value: unknown): void {
  switch (scalarType) {
    case 'string':
      w.string(value as string);
      return;
    case 'bytes':
      w.bytes(value as Uint8Array);
      return;
    case 'bool':
      w.bool(value as boolean);
      return;
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64': {
      const long = typeof value === 'bigint' ? value.toString() : (value as number | string);
      (w[scalarType] as (v: number | string) => protobuf.Writer)(long);
      return;
    }
    default:
      (w[scalarType as 'int32'] as (v: number) => protobuf.Writer)(value as number);
  }
}

/** The scalar type name used on the wire for a field: enums travel as int32. */
function scalarTypeOf(field: protobuf.Field, typeName: string): string | undefined {
  if (typeName in wireType) return typeName;
  if (typeOf(field) instanceof protobuf.Enum) return 'int32';
  return undefined; // a message
}

function writeValue(w: protobuf.Writer, field: protobuf.Field, id: number, typeName: string, value: unknown) {
  const scalarType = scalarTypeOf(field, typeName);
  if (scalarType === undefined) {
    w.uint32((id << 3) | 2).fork();
    writeMessage(w, typeOf(field) as protobuf.Type, value as Plain);
    w.ldelim();
    return;
  }
  const v = typeOf(field) instanceof protobuf.Enum ? enumNumber(field, value) : value;
  w.uint32((id << 3) | (wireType[scalarType] as number));
  writeScalar(w, scalarType, v);
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function writeMessage(w: protobuf.Writer, type: protobuf.Type, message: Plain): void {
  for (const field of orderedFields(type)) {
    const value = message[field.name];
    if (value === undefined || value === null) continue;
    if (field instanceof protobuf.MapField) {
      const keyIsNumeric = field.keyType !== 'string' && field.keyType !== 'bool';
      const entries = Object.entries(value as Plain).sort(([a], [b]) =>
        keyIsNumeric ? Number(a) - Number(b) : compareKeys(a, b),
      );
      for (const [key, entryValue] of entries) {
        w.uint32((field.id << 3) | 2).fork();
        w.uint32((1 << 3) | (wireType[field.keyType] as number));
        writeScalar(
          w,
          field.keyType,
          keyIsNumeric ? Number(key) : field.keyType === 'bool' ? key === 'true' : key,
        );
        writeValue(w, field, 2, field.type, entryValue);
        w.ldelim();
      }
      continue;
    }
    if (field.repeated) {
      const items = value as unknown[];
      if (items.length === 0) continue;
      const scalarType = scalarTypeOf(field, field.type);
      const packed = scalarType !== undefined && wireType[scalarType] !== 2 && field.packed;
      if (packed) {
        w.uint32((field.id << 3) | 2).fork();
        for (const item of items) {
          writeScalar(w, scalarType, typeOf(field) instanceof protobuf.Enum ? enumNumber(field, item) : item);
        }
        w.ldelim();
      } else {
        for (const item of items) writeValue(w, field, field.id, field.type, item);
      }
      continue;
    }
    const inRealOneof = field.partOf !== null && !isSyntheticOneof(field.partOf);
    const scalarType = scalarTypeOf(field, field.type);
    const keepZero = inRealOneof || field.options?.proto3_optional === true;
    if (scalarType !== undefined && !keepZero && isZero(scalarType, value)) continue;
    writeValue(w, field, field.id, field.type, value);
  }
}

/** Encodes a plain object of the given message type, deterministically (see the module comment). */
export function encodeMessage(type: protobuf.Type, message: object): Uint8Array {
  const w = protobuf.Writer.create();
  writeMessage(w, type, message as Plain);
  return w.finish();
}

const fieldsByIdCache = new WeakMap<protobuf.Type, Map<number, protobuf.Field>>();

function fieldsById(type: protobuf.Type): Map<number, protobuf.Field> {
  let byId = fieldsByIdCache.get(type);
  if (!byId) {
    byId = new Map(type.fieldsArray.map((f) => [f.id, f]));
    fieldsByIdCache.set(type, byId);
  }
  return byId;
}

type Long = { toNumber(): number };
const longNumber = (value: number | Long): number => (typeof value === 'number' ? value : value.toNumber());

function readScalar(r: protobuf.Reader, scalarType: string): unknown {
  switch (scalarType) {
    case 'string':
      return r.string();
    case 'bytes':
      return r.bytes();
    case 'bool':
      return r.bool();
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return longNumber((r[scalarType] as unknown as () => number | Long).call(r));
    default:
      return (r[scalarType as 'int32'] as () => number).call(r);
  }
}

function readValue(r: protobuf.Reader, field: protobuf.Field, typeName: string): unknown {
  const scalarType = scalarTypeOf(field, typeName);
  if (scalarType !== undefined) return readScalar(r, scalarType);
  const length = r.uint32();
  return readMessage(r, typeOf(field) as protobuf.Type, r.pos + length);
}

function readMapEntry(r: protobuf.Reader, field: protobuf.Field & protobuf.MapField, target: Plain): void {
  const length = r.uint32(); // read before r.pos: it moves past the length
  const end = r.pos + length;
  const keyType = field.keyType;
  let key: unknown = keyType === 'string' ? '' : keyType === 'bool' ? false : 0;
  let value: unknown;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) key = readScalar(r, keyType);
    else if (tag >>> 3 === 2) value = readValue(r, field, field.type);
    else r.skipType(tag & 7);
  }
  if (value === undefined) {
    const scalarType = scalarTypeOf(field, field.type);
    value =
      scalarType === undefined
        ? {}
        : scalarType === 'string'
          ? ''
          : scalarType === 'bytes'
            ? new Uint8Array()
            : scalarType === 'bool'
              ? false
              : 0;
  }
  target[String(key)] = value;
}

function readMessage(r: protobuf.Reader, type: protobuf.Type, end: number): Plain {
  const message: Plain = {};
  const fields = fieldsById(type);
  while (r.pos < end) {
    const tag = r.uint32();
    const field = fields.get(tag >>> 3);
    if (!field) {
      r.skipType(tag & 7);
      continue;
    }
    if (field instanceof protobuf.MapField) {
      readMapEntry(r, field, (message[field.name] ??= {}) as Plain);
    } else if (field.repeated) {
      const items = (message[field.name] ??= []) as unknown[];
      const scalarType = scalarTypeOf(field, field.type);
      if ((tag & 7) === 2 && scalarType !== undefined && wireType[scalarType] !== 2) {
        // packed: a length, then the values back to back
        const length = r.uint32();
        const packedEnd = r.pos + length;
        while (r.pos < packedEnd) items.push(readScalar(r, scalarType));
      } else {
        items.push(readValue(r, field, field.type));
      }
    } else {
      message[field.name] = readValue(r, field, field.type);
    }
  }
  return message;
}

/**
 * Decodes bytes into a plain object: fields present on the wire only (no defaults), int64 as number,
 * enums as numbers, bytes as the reader's Uint8Array view, map keys as strings. Reads the schema
 * directly: protobufjs' own decode generates and compiles a decoder and a converter per type, which
 * cost ~30 ms of every build (CPU profile).
 */
export function decodeMessage<T>(type: protobuf.Type, bytes: Uint8Array): T {
  const r = protobuf.Reader.create(bytes);
  return readMessage(r, type, r.len) as T;
}
