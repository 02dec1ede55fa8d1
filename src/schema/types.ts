/**
 * Cog's type model for static schema generation, following upstream Cog's pkg/schema: primitive
 * types with a repetition (required / optional / list / optional list) for inputs, and a recursive
 * type tree for outputs (arrays, dicts, BaseModel objects, iterators).
 */

export type Primitive = 'bool' | 'float' | 'int' | 'str' | 'Path' | 'File' | 'Secret' | 'Any';
export type Repetition = 'required' | 'optional' | 'repeated' | 'optional-repeated';

export interface FieldType {
  readonly primitive: Primitive;
  readonly repetition: Repetition;
}

/** The JSON shape of an input: a primitive, an array of one, or a union of those. */
export type InputType =
  | { readonly kind: 'primitive'; readonly primitive: Primitive; readonly nullable: boolean }
  | { readonly kind: 'array'; readonly elem: Primitive; readonly nullable: boolean }
  | { readonly kind: 'union'; readonly variants: readonly InputType[]; readonly nullable: boolean };

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A statically evaluated Python literal. */
export type PyValue =
  | { readonly kind: 'none' }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'str'; readonly value: string }
  | { readonly kind: 'list' | 'set'; readonly items: readonly PyValue[] }
  | { readonly kind: 'dict'; readonly keys: readonly PyValue[]; readonly values: readonly PyValue[] };

export function pyToJson(v: PyValue): JsonValue {
  switch (v.kind) {
    case 'none':
      return null;
    case 'bool':
    case 'int':
    case 'float':
    case 'str':
      return v.value;
    case 'list':
    case 'set':
      return v.items.map(pyToJson);
    case 'dict': {
      const out: JsonObject = {};
      v.keys.forEach((k, i) => {
        const val = v.values[i];
        if (val === undefined) return;
        const key = k.kind === 'str' ? k.value : k.kind === 'none' ? '<nil>' : String(pyToJson(k));
        out[key] = pyToJson(val);
      });
      return out;
    }
  }
}

export function primitiveJson(p: Primitive): JsonObject {
  switch (p) {
    case 'bool':
      return { type: 'boolean' };
    case 'float':
      return { type: 'number' };
    case 'int':
      return { type: 'integer' };
    case 'str':
      return { type: 'string' };
    case 'Path':
    case 'File':
      return { format: 'uri', type: 'string' };
    case 'Secret':
      return { format: 'password', type: 'string', writeOnly: true, 'x-cog-secret': true };
    case 'Any':
      return { type: 'object' };
  }
}

export const primitiveNames: ReadonlyMap<string, Primitive> = new Map<string, Primitive>([
  ['bool', 'bool'],
  ['float', 'float'],
  ['int', 'int'],
  ['str', 'str'],
  ['Path', 'Path'],
  ['File', 'File'],
  ['Secret', 'Secret'],
  ['Any', 'Any'],
]);

export function inputTypeJson(t: InputType): JsonObject {
  let schema: JsonObject;
  switch (t.kind) {
    case 'primitive':
      schema = primitiveJson(t.primitive);
      break;
    case 'array':
      schema = { items: primitiveJson(t.elem), type: 'array' };
      break;
    case 'union':
      schema = {
        anyOf: t.variants.map((v) => {
          const s = inputTypeJson(v);
          if (t.nullable) s.nullable = true;
          return s;
        }),
      };
      break;
  }
  if (t.nullable) schema.nullable = true;
  return sortKeys(schema);
}

/** Output type tree (upstream's SchemaType). */
export type SchemaType =
  | { readonly kind: 'primitive'; readonly primitive: Primitive; readonly nullable?: boolean }
  | { readonly kind: 'any'; readonly nullable?: boolean }
  | { readonly kind: 'array'; readonly items: SchemaType; readonly nullable?: boolean }
  | { readonly kind: 'dict'; readonly value: SchemaType; readonly nullable?: boolean }
  | { readonly kind: 'object'; readonly fields: readonly ObjectField[]; readonly nullable?: boolean }
  | { readonly kind: 'iterator'; readonly elem: SchemaType; readonly nullable?: boolean }
  | { readonly kind: 'concat-iterator'; readonly nullable?: boolean };

export interface ObjectField {
  readonly name: string;
  readonly type: SchemaType;
  readonly required: boolean;
}

export function schemaTypeJson(s: SchemaType, topLevel: boolean): JsonObject {
  const out = coreSchema(s);
  if (topLevel) out.title = 'Output';
  if (s.nullable === true) out.nullable = true;
  return sortKeys(out);
}

function coreSchema(s: SchemaType): JsonObject {
  switch (s.kind) {
    case 'primitive':
      return primitiveJson(s.primitive);
    case 'any':
      return { type: 'object' };
    case 'array':
      return { items: schemaTypeJson(s.items, false), type: 'array' };
    case 'dict':
      return { additionalProperties: schemaTypeJson(s.value, false), type: 'object' };
    case 'object': {
      const properties: JsonObject = {};
      const required: string[] = [];
      for (const f of s.fields) {
        const prop = schemaTypeJson(f.type, false);
        prop.title = titleCase(f.name);
        properties[f.name] = sortKeys(prop);
        if (f.required) required.push(f.name);
      }
      const out: JsonObject = { properties };
      if (required.length > 0) out.required = required;
      out.type = 'object';
      return out;
    }
    case 'iterator':
      return { items: schemaTypeJson(s.elem, false), type: 'array', 'x-cog-array-type': 'iterator' };
    case 'concat-iterator':
      return {
        items: { type: 'string' },
        type: 'array',
        'x-cog-array-display': 'concatenate',
        'x-cog-array-type': 'iterator',
      };
  }
}

/** snake_case → Title Case, exactly like upstream's TitleCase (split on "_", upper-case each first letter). */
export function titleCase(s: string): string {
  return s
    .split('_')
    .map((p) => (p.length > 0 ? p.charAt(0).toUpperCase() + p.slice(1) : p))
    .join(' ');
}

/** A copy with keys in byte order, as Go's encoding/json writes maps. */
export function sortKeys<T extends JsonObject>(o: T): T {
  const out: JsonObject = {};
  for (const k of Object.keys(o).sort(byteOrder)) {
    const v = o[k];
    if (v !== undefined) out[k] = v;
  }
  return out as T;
}

export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Recursively sorts every object's keys (what a Go map round-trip does to the whole document). */
export function deepSortKeys(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(deepSortKeys);
  if (v !== null && typeof v === 'object') {
    const out: JsonObject = {};
    for (const k of Object.keys(v).sort(byteOrder)) {
      const child = v[k];
      if (child !== undefined) out[k] = deepSortKeys(child);
    }
    return out;
  }
  return v;
}
