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

const orderCache = new WeakMap<protobuf.Type, protobuf.Field[]>();

/** Fields in the order protobuf-go writes them: plain fields by number, then oneof members by number. */
function orderedFields(type: protobuf.Type): protobuf.Field[] {
  let fields = orderCache.get(type);
  if (!fields) {
    const byId = (a: protobuf.Field, b: protobuf.Field) => a.id - b.id;
    const all = type.fieldsArray.map((f) => f.resolve());
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
  const enumType = field.resolvedType;
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
  if (field.resolvedType instanceof protobuf.Enum) return 'int32';
  return undefined; // a message
}

function writeValue(w: protobuf.Writer, field: protobuf.Field, id: number, typeName: string, value: unknown) {
  const scalarType = scalarTypeOf(field, typeName);
  if (scalarType === undefined) {
    w.uint32((id << 3) | 2).fork();
    writeMessage(w, field.resolvedType as protobuf.Type, value as Plain);
    w.ldelim();
    return;
  }
  const v = field.resolvedType instanceof protobuf.Enum ? enumNumber(field, value) : value;
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
          writeScalar(
            w,
            scalarType,
            field.resolvedType instanceof protobuf.Enum ? enumNumber(field, item) : item,
          );
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

/** Decodes bytes into a plain object: int64 as number, enums as numbers, bytes as Uint8Array. */
export function decodeMessage<T>(type: protobuf.Type, bytes: Uint8Array): T {
  return type.toObject(type.decode(bytes), { longs: Number, enums: Number, defaults: false }) as T;
}
