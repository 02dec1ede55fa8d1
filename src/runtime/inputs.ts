/**
 * Client-side input handling for `cog predict` / `cog train`, following upstream Cog's CLI
 * (pkg/cli/predict.go, pkg/predict/input*.go): `-i name=value` flags and `--json` inputs become the
 * JSON `input` object of a POST /predictions (or /trainings) request, coerced by the model's OpenAPI
 * schema, and can be validated per field before the model is started. A runtime 422 response is
 * turned into the same per-field message.
 *
 * Everything here is pure except for reading `@file` inputs (and stdin for `--json -`), which goes
 * through injectable readers so tests need no real files.
 */

import { readFile as fsReadFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { extname, resolve } from 'node:path';
import { CogError } from '../errors.js';
import { isRecord } from '../is-record.js';

/** An OpenAPI document as parsed JSON (the schema label or GET /openapi.json). */
export type OpenApiDoc = { readonly [key: string]: unknown };
/** One JSON Schema object inside an OpenAPI document. */
export type JsonSchema = { readonly [key: string]: unknown };
export type RunMode = 'predict' | 'train';

export interface ParseInputOptions {
  /** directory relative `@path` values are resolved against */
  readonly cwd: string;
  readonly mode: RunMode;
  /** reads an `@path` file; defaults to fs.readFile */
  readonly readFile?: (path: string) => Promise<Buffer>;
  /** home directory for `~` expansion; defaults to os.homedir() */
  readonly homeDir?: string;
}

export interface ParseJsonOptions {
  readonly cwd: string;
  readonly readFile?: (path: string) => Promise<Buffer>;
  /** reads all of stdin, for `--json -` (and upstream's `--json @-`); takes precedence over `stdin` */
  readonly readStdin?: () => Promise<Buffer | string>;
  /** the stream `--json -` reads when no readStdin is given */
  readonly stdin?: NodeJS.ReadableStream;
  readonly homeDir?: string;
}

/** One per-field problem found by {@link validateInputs} or reported in a runtime 422. */
export interface InputProblem {
  readonly field: string;
  readonly message: string;
}

// ---------------------------------------------------------------------------------------------
// MIME types

/** Extension (without dot) → MIME type; the first extension listed for a type is its canonical one. */
const mimeByExtension: ReadonlyMap<string, string> = new Map([
  ['png', 'image/png'],
  ['jpg', 'image/jpeg'],
  ['jpeg', 'image/jpeg'],
  ['gif', 'image/gif'],
  ['webp', 'image/webp'],
  ['bmp', 'image/bmp'],
  ['tiff', 'image/tiff'],
  ['tif', 'image/tiff'],
  ['svg', 'image/svg+xml'],
  ['ico', 'image/vnd.microsoft.icon'],
  ['wav', 'audio/wav'],
  ['mp3', 'audio/mpeg'],
  ['ogg', 'audio/ogg'],
  ['oga', 'audio/ogg'],
  ['flac', 'audio/flac'],
  ['aac', 'audio/aac'],
  ['m4a', 'audio/mp4'],
  ['opus', 'audio/opus'],
  ['mp4', 'video/mp4'],
  ['webm', 'video/webm'],
  ['mov', 'video/quicktime'],
  ['avi', 'video/x-msvideo'],
  ['mpeg', 'video/mpeg'],
  ['txt', 'text/plain'],
  ['md', 'text/markdown'],
  ['csv', 'text/csv'],
  ['html', 'text/html'],
  ['css', 'text/css'],
  ['js', 'text/javascript'],
  ['json', 'application/json'],
  ['jsonl', 'application/jsonl'],
  ['xml', 'application/xml'],
  ['pdf', 'application/pdf'],
  ['zip', 'application/zip'],
  ['tar', 'application/x-tar'],
  ['gz', 'application/gzip'],
  ['bin', 'application/octet-stream'],
  ['npy', 'application/octet-stream'],
  ['npz', 'application/octet-stream'],
  ['safetensors', 'application/octet-stream'],
]);

/** Extra MIME aliases seen in data URLs, mapped to an extension. */
const extensionAliases: ReadonlyMap<string, string> = new Map([
  ['image/jpg', 'jpg'],
  ['image/x-png', 'png'],
  ['image/x-ms-bmp', 'bmp'],
  ['audio/x-wav', 'wav'],
  ['audio/wave', 'wav'],
  ['audio/mp3', 'mp3'],
  ['application/x-gzip', 'gz'],
  ['application/x-zip-compressed', 'zip'],
]);

/** MIME type for a file name by its extension; application/octet-stream when unknown. */
export function mimeTypeForPath(path: string): string {
  const ext = extname(path).slice(1).toLowerCase();
  return mimeByExtension.get(ext) ?? 'application/octet-stream';
}

/** Extension (with leading dot) for a MIME type, parameters ignored; "" when unknown. */
export function extensionForMimeType(mimeType: string): string {
  const base = (mimeType.split(';')[0] ?? '').trim().toLowerCase();
  const alias = extensionAliases.get(base);
  if (alias !== undefined) return `.${alias}`;
  for (const [ext, type] of mimeByExtension) if (type === base) return `.${ext}`;
  return '';
}

/** A base64 data URL. */
export function toDataUrl(data: Buffer, mimeType: string): string {
  return `data:${mimeType};base64,${data.toString('base64')}`;
}

// ---------------------------------------------------------------------------------------------
// Schema helpers (shared with outputs.ts)

export { isRecord };

/** Follows a local `$ref` (#/components/schemas/X); other values are returned as they are. */
export function deref(doc: OpenApiDoc | undefined, schema: unknown, depth = 0): JsonSchema | undefined {
  if (!isRecord(schema)) return undefined;
  const ref = schema.$ref;
  if (typeof ref !== 'string') return schema;
  if (doc === undefined || depth > 32 || !ref.startsWith('#/')) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isRecord(node)) return undefined;
    node = node[key];
  }
  return deref(doc, node, depth + 1);
}

/**
 * The effective schema of a property: `$ref` followed, and the pydantic `allOf: [{$ref}]` wrapper
 * (used for choices) merged so the referenced enum/type is visible next to default/description.
 */
export function resolveSchema(doc: OpenApiDoc | undefined, schema: unknown): JsonSchema | undefined {
  const s = deref(doc, schema);
  if (s === undefined) return undefined;
  const allOf = s.allOf;
  if (!Array.isArray(allOf) || allOf.length === 0) return s;
  let merged: { [key: string]: unknown } = {};
  for (const part of allOf) {
    const r = resolveSchema(doc, part);
    if (r !== undefined) merged = { ...merged, ...r };
  }
  const rest = Object.fromEntries(Object.entries(s).filter(([k]) => k !== 'allOf'));
  return { ...merged, ...rest };
}

/**
 * The Input component, or in train mode TrainingInput: never the predictor's Input, whose names a
 * trainer does not take (a schema without TrainingInput has no trainer, which `cog train` refuses).
 */
export function inputComponent(doc: OpenApiDoc | undefined, mode: RunMode): JsonSchema | undefined {
  const schemas = isRecord(doc?.components) ? doc.components.schemas : undefined;
  if (!isRecord(schemas)) return undefined;
  return deref(doc, mode === 'train' ? schemas.TrainingInput : schemas.Input);
}

function propertiesOf(component: JsonSchema): { [key: string]: unknown } {
  return isRecord(component.properties) ? component.properties : {};
}

/** Property names ordered by x-order (then declaration order). */
function orderedNames(component: JsonSchema): string[] {
  const props = propertiesOf(component);
  const names = Object.keys(props);
  const order = (n: string): number => {
    const p = props[n];
    const o = isRecord(p) ? p['x-order'] : undefined;
    return typeof o === 'number' ? o : Number.MAX_SAFE_INTEGER;
  };
  return names
    .map((n, i) => ({ n, i }))
    .sort((a, b) => order(a.n) - order(b.n) || a.i - b.i)
    .map((x) => x.n);
}

/** JSON Schema types of a schema (OpenAPI 3.0 has one string; 3.1 may have a list). */
export function schemaTypes(schema: JsonSchema | undefined): string[] {
  const t = schema?.type;
  if (typeof t === 'string') return [t];
  if (Array.isArray(t)) return t.filter((x): x is string => typeof x === 'string');
  return [];
}

/** A URI (Path/File) schema: type string, format uri. */
export function isUriSchema(schema: JsonSchema | undefined): boolean {
  return schema !== undefined && schemaTypes(schema).includes('string') && schema.format === 'uri';
}

/** The command that runs `mode` (`cog predict` is the deprecated name of `cog run`). */
const commandOf = (mode: RunMode) => (mode === 'train' ? 'train' : 'run');

function unknownInputsError(unknown: readonly string[], component: JsonSchema, mode: RunMode): CogError {
  const valid = Object.keys(propertiesOf(component)).sort();
  const names =
    unknown.length === 1
      ? `input "${unknown[0] ?? ''}"`
      : `inputs ${unknown.map((n) => `"${n}"`).join(', ')}`;
  const tail = valid.length === 0 ? 'model does not accept inputs' : `valid inputs are: ${valid.join(', ')}`;
  return new CogError(`unknown ${names}; ${tail}`, {
    hint: `check the spelling; \`cog ${commandOf(mode)}\` accepts only the inputs the model declares`,
  });
}

// ---------------------------------------------------------------------------------------------
// -i name=value

function expandHome(path: string, home: string | undefined): string {
  if (path === '~') return home ?? homedir();
  if (path.startsWith('~/')) return `${home ?? homedir()}${path.slice(1)}`;
  return path;
}

async function fileToDataUrl(
  path: string,
  opts: {
    readonly cwd: string;
    readonly readFile?: (path: string) => Promise<Buffer>;
    readonly homeDir?: string;
  },
  what: string,
): Promise<string> {
  const full = resolve(opts.cwd, expandHome(path, opts.homeDir));
  const read = opts.readFile ?? ((p: string) => fsReadFile(p));
  let data: Buffer;
  try {
    data = await read(full);
  } catch (err) {
    const code = isRecord(err) && typeof err.code === 'string' ? ` (${err.code})` : '';
    throw new CogError(`Failed to read file ${path} for ${what}${code}`, {
      hint: 'a value starting with @ is read from a file on disk; check the path, or drop the @ to pass text',
      cause: err,
    });
  }
  return toDataUrl(data, mimeTypeForPath(full));
}

const intPattern = /^[+-]?\d+$/;
const floatPattern = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Converts a CLI string to the scalar type of a schema, or returns undefined when it does not fit. */
function coerceScalar(raw: string, type: string): unknown {
  const text = raw.trim();
  switch (type) {
    case 'string':
      return raw;
    case 'integer': {
      if (!intPattern.test(text)) return undefined;
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : undefined;
    }
    case 'number':
      return floatPattern.test(text) ? Number(text) : undefined;
    case 'boolean': {
      const lower = text.toLowerCase();
      if (lower === 'true' || lower === 't' || lower === '1') return true;
      if (lower === 'false' || lower === 'f' || lower === '0') return false;
      return undefined;
    }
    case 'object': {
      try {
        const parsed: unknown = JSON.parse(text);
        return isRecord(parsed) ? parsed : undefined;
      } catch {
        return undefined;
      }
    }
    case 'null':
      return text === 'null' ? null : undefined;
    default:
      return undefined;
  }
}

/**
 * Coerces one CLI string by a (resolved) schema. Values that do not fit are left as strings so
 * {@link validateInputs} (or the runtime) reports them per field.
 */
function coerceString(raw: string, doc: OpenApiDoc | undefined, schema: JsonSchema | undefined): unknown {
  if (schema === undefined) return raw;
  const variants = Array.isArray(schema.anyOf)
    ? schema.anyOf
    : Array.isArray(schema.oneOf)
      ? schema.oneOf
      : [];
  if (variants.length > 0) {
    // Unions are tried string-first like upstream: a str | int input given "5" stays "5".
    const resolved = variants.map((v) => resolveSchema(doc, v));
    const ordered = [
      ...resolved.filter((v) => schemaTypes(v).includes('string')),
      ...resolved.filter((v) => !schemaTypes(v).includes('string')),
    ];
    for (const v of ordered) {
      const c = coerceOne(raw, doc, v);
      if (c !== undefined) return c;
    }
    return raw;
  }
  return coerceOne(raw, doc, schema) ?? raw;
}

function coerceOne(raw: string, doc: OpenApiDoc | undefined, schema: JsonSchema | undefined): unknown {
  if (schema === undefined) return undefined;
  if (Array.isArray(schema.anyOf) || Array.isArray(schema.oneOf)) {
    const c = coerceString(raw, doc, schema);
    return c === raw && !schemaAccepts(doc, schema, raw) ? undefined : c;
  }
  const types = schemaTypes(schema);
  if (types.length === 0) {
    // no type: an enum (pick the member that matches) or free-form
    if (Array.isArray(schema.enum)) return schema.enum.find((e) => String(e) === raw);
    return raw;
  }
  for (const type of types) {
    if (type === 'array') {
      const arr = coerceArray([raw], doc, schema, true);
      if (arr !== undefined) return arr;
      continue;
    }
    const c = coerceScalar(raw, type);
    if (c !== undefined) return c;
  }
  return undefined;
}

function schemaAccepts(doc: OpenApiDoc | undefined, schema: JsonSchema, value: unknown): boolean {
  return checkValue(value, schema, doc, '').length === 0;
}

/**
 * Builds an array value: one value given as a JSON array literal is taken as the list; otherwise
 * each value is one element, coerced by the items schema.
 */
function coerceArray(
  values: readonly string[],
  doc: OpenApiDoc | undefined,
  schema: JsonSchema,
  parseLiteral: boolean,
): unknown[] | undefined {
  const items = resolveSchema(doc, schema.items);
  const coerceItem = (v: unknown): unknown => (typeof v === 'string' ? coerceString(v, doc, items) : v);
  if (parseLiteral && values.length === 1) {
    const only = values[0] ?? '';
    const text = only.trim();
    if (text.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (Array.isArray(parsed)) return parsed.map(coerceItem);
      } catch {
        // not JSON: a single element that happens to start with "["
      }
    }
  }
  return values.map(coerceItem);
}

interface RawFlag {
  readonly values: string[];
}

/**
 * Parses `-i name=value` flags into the request's input object.
 *
 * - `@path` reads the file (relative to cwd, `~` expanded) into a base64 data URL;
 * - surrounding double quotes are stripped;
 * - a name repeated builds an array;
 * - with a schema, values are coerced by the Input (or TrainingInput) component, and names the
 *   model does not declare are rejected.
 */
export async function parseInputFlags(
  flags: readonly string[],
  schema: OpenApiDoc | undefined,
  opts: ParseInputOptions,
): Promise<Record<string, unknown>> {
  const raw = new Map<string, RawFlag>();
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq < 0) {
      throw new CogError(`Failed to parse input '${flag}', expected format is 'name=value'`, {
        hint: `pass each input as -i name=value, e.g. -i prompt="a cat"; prefix a file path with @, e.g. -i image=@photo.jpg`,
      });
    }
    const name = flag.slice(0, eq).trim();
    if (name === '') {
      throw new CogError(`Failed to parse input '${flag}', the input name is empty`, {
        hint: 'pass each input as -i name=value',
      });
    }
    let value = flag.slice(eq + 1);
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    const entry = raw.get(name);
    if (entry === undefined) raw.set(name, { values: [value] });
    else entry.values.push(value);
  }

  const component = inputComponent(schema, opts.mode);
  const props = component === undefined ? undefined : propertiesOf(component);
  if (component !== undefined && props !== undefined) {
    const unknown = [...raw.keys()].filter((n) => !Object.hasOwn(props, n)).sort();
    if (unknown.length > 0) throw unknownInputsError(unknown, component, opts.mode);
  }

  const out: Record<string, unknown> = {};
  for (const [name, { values }] of raw) {
    // files first: an @path value becomes a data URL string before any coercion
    const resolved: string[] = [];
    const isFile: boolean[] = [];
    for (const v of values) {
      if (v.startsWith('@')) {
        resolved.push(await fileToDataUrl(v.slice(1), opts, `input "${name}"`));
        isFile.push(true);
      } else {
        resolved.push(v);
        isFile.push(false);
      }
    }
    const prop = props === undefined ? undefined : resolveSchema(schema, props[name]);
    out[name] = coerceFlag(resolved, isFile, schema, prop);
  }
  return out;
}

function coerceFlag(
  values: readonly string[],
  isFile: readonly boolean[],
  doc: OpenApiDoc | undefined,
  prop: JsonSchema | undefined,
): unknown {
  const isArray =
    prop !== undefined &&
    (schemaTypes(prop).includes('array') ||
      (Array.isArray(prop.anyOf) &&
        prop.anyOf.some((v) => schemaTypes(resolveSchema(doc, v)).includes('array'))));
  if (values.length > 1) {
    if (prop === undefined) return [...values];
    const arraySchema = schemaTypes(prop).includes('array')
      ? prop
      : (Array.isArray(prop.anyOf) ? prop.anyOf : [])
          .map((v) => resolveSchema(doc, v))
          .find((v) => schemaTypes(v).includes('array'));
    if (arraySchema === undefined) return [...values];
    return coerceArray(values, doc, arraySchema, false);
  }
  const only = values[0] ?? '';
  if (isFile[0] === true) {
    // a file is a URI string; an array input gets it as its single element
    return isArray && !schemaTypes(prop).includes('string') ? [only] : only;
  }
  return coerceString(only, doc, prop);
}

// ---------------------------------------------------------------------------------------------
// --json

async function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/**
 * Reads `--json` inputs: inline JSON, `@file`, or `-` / `@-` for stdin. Top-level string values
 * starting with `@` (and such strings inside top-level arrays) become data URLs, as in upstream's
 * --json mode.
 */
export async function parseJsonInput(
  value: string,
  opts: ParseJsonOptions,
): Promise<Record<string, unknown>> {
  let text: string;
  let source: string;
  if (value === '-' || value === '@-') {
    let data: Buffer | string;
    if (opts.readStdin !== undefined) data = await opts.readStdin();
    else if (opts.stdin !== undefined) data = await readStream(opts.stdin);
    else throw new CogError('--json - needs standard input, which is unavailable');
    text = typeof data === 'string' ? data : data.toString('utf8');
    source = 'standard input';
  } else if (value.startsWith('@')) {
    const path = resolve(opts.cwd, expandHome(value.slice(1), opts.homeDir));
    const read = opts.readFile ?? ((p: string) => fsReadFile(p));
    try {
      text = (await read(path)).toString('utf8');
    } catch (err) {
      throw new CogError(`Failed to read JSON from file ${value.slice(1)}`, {
        hint: 'pass --json with inline JSON, @file.json, or - to read standard input',
        cause: err,
      });
    }
    source = value.slice(1);
  } else {
    text = value;
    source = '--json';
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CogError(
      `Failed to parse JSON from ${source}: ${err instanceof Error ? err.message : String(err)}`,
      {
        hint: `--json takes an object of inputs, e.g. --json '{"prompt": "a cat"}'`,
      },
    );
  }
  if (!isRecord(parsed)) {
    throw new CogError(`JSON inputs from ${source} must be an object, not ${jsonTypeName(parsed)}`, {
      hint: `--json takes an object of inputs, e.g. --json '{"prompt": "a cat"}'`,
    });
  }

  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(parsed)) {
    if (typeof v === 'string' && v.startsWith('@')) {
      out[key] = await fileToDataUrl(v.slice(1), opts, `input "${key}"`);
    } else if (Array.isArray(v)) {
      const items: unknown[] = [];
      for (const item of v) {
        items.push(
          typeof item === 'string' && item.startsWith('@')
            ? await fileToDataUrl(item.slice(1), opts, `input "${key}"`)
            : item,
        );
      }
      out[key] = items;
    } else {
      out[key] = v;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Validation

export function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  if (typeof value === 'object') return 'object';
  return typeof value;
}

function matchesType(value: unknown, type: string): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'object':
      return isRecord(value);
    case 'array':
      return Array.isArray(value);
    case 'null':
      return value === null;
    default:
      return true;
  }
}

function describeSchema(doc: OpenApiDoc | undefined, schema: JsonSchema | undefined): string {
  if (schema === undefined) return 'any';
  const types = schemaTypes(schema);
  if (types.length > 0) {
    if (types.includes('array')) return `array of ${describeSchema(doc, resolveSchema(doc, schema.items))}`;
    return types.join(' or ');
  }
  return 'any';
}

function formatValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * What was given, for a type mismatch: a value from JSON by its type; command-line text (`-i`), which
 * fits none of the types, by itself and why it does not fit, e.g. `2.5 (not a whole number)`.
 */
function describeGiven(value: unknown, types: readonly string[], fromText: boolean): string {
  // `-i n=2 -i n=3`: a name given more than once is a list, for an input that takes one value
  if (fromText && Array.isArray(value) && !types.includes('array'))
    return `${value.length} values (-i gave it ${value.length} times; it takes one)`;
  if (!fromText || typeof value !== 'string') return jsonTypeName(value);
  const text = value.trim();
  const numeric = floatPattern.test(text);
  const shown = numeric ? text : JSON.stringify(value);
  const reasons = new Set<string>();
  for (const type of types) {
    if (type === 'integer')
      reasons.add(
        intPattern.test(text)
          ? 'too large for an integer'
          : !numeric
            ? 'not a number'
            : Number.isInteger(Number(text))
              ? 'write an integer without a decimal point or exponent'
              : 'not a whole number',
      );
    else if (type === 'number') reasons.add('not a number');
    else if (type === 'boolean') reasons.add('not true or false');
    else if (type === 'object') reasons.add('not a JSON object');
  }
  return reasons.size > 0 ? `${shown} (${[...reasons].join(', ')})` : shown;
}

/**
 * Checks one value against a resolved schema; problems are keyed by `field` (dotted paths inside
 * arrays). `fromText`: the value came from `-i` text, so a string is what coercion could not convert.
 */
function checkValue(
  value: unknown,
  schema: JsonSchema,
  doc: OpenApiDoc | undefined,
  field: string,
  fromText = false,
): InputProblem[] {
  const problem = (message: string): InputProblem[] => [{ field, message }];

  const variants = Array.isArray(schema.anyOf)
    ? schema.anyOf
    : Array.isArray(schema.oneOf)
      ? schema.oneOf
      : [];
  if (variants.length > 0) {
    const resolved = variants.map((v) => resolveSchema(doc, v)).filter((v) => v !== undefined);
    for (const v of resolved) if (checkValue(value, v, doc, field).length === 0) return [];
    if (resolved.length === 1 && resolved[0] !== undefined)
      return checkValue(value, resolved[0], doc, field, fromText);
    const wanted = resolved.flatMap((v) => schemaTypes(v));
    return problem(
      `expected ${resolved.map((v) => describeSchema(doc, v)).join(' or ')}, got ${describeGiven(value, wanted, fromText)}`,
    );
  }

  const types = schemaTypes(schema);
  if (types.length > 0 && !types.some((t) => matchesType(value, t))) {
    return problem(`expected ${types.join(' or ')}, got ${describeGiven(value, types, fromText)}`);
  }

  if (Array.isArray(schema.enum) && schema.enum.length > 0) {
    if (!schema.enum.some((e) => e === value)) {
      return problem(
        `must be one of: ${schema.enum.map(formatValue).join(', ')} (got ${formatValue(value)})`,
      );
    }
  }

  const problems: InputProblem[] = [];
  if (typeof value === 'number') {
    const exclusiveMin = schema.exclusiveMinimum;
    const exclusiveMax = schema.exclusiveMaximum;
    if (typeof schema.minimum === 'number') {
      if (exclusiveMin === true ? value <= schema.minimum : value < schema.minimum) {
        const op = exclusiveMin === true ? 'greater than' : 'greater than or equal to';
        problems.push({ field, message: `must be ${op} ${schema.minimum} (got ${value})` });
      }
    }
    if (typeof exclusiveMin === 'number' && value <= exclusiveMin) {
      problems.push({ field, message: `must be greater than ${exclusiveMin} (got ${value})` });
    }
    if (typeof schema.maximum === 'number') {
      if (exclusiveMax === true ? value >= schema.maximum : value > schema.maximum) {
        const op = exclusiveMax === true ? 'less than' : 'less than or equal to';
        problems.push({ field, message: `must be ${op} ${schema.maximum} (got ${value})` });
      }
    }
    if (typeof exclusiveMax === 'number' && value >= exclusiveMax) {
      problems.push({ field, message: `must be less than ${exclusiveMax} (got ${value})` });
    }
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof schema.minLength === 'number' && length < schema.minLength) {
      problems.push({
        field,
        message: `must be at least ${schema.minLength} character${schema.minLength === 1 ? '' : 's'} long (got ${length})`,
      });
    }
    if (typeof schema.maxLength === 'number' && length > schema.maxLength) {
      problems.push({
        field,
        message: `must be at most ${schema.maxLength} character${schema.maxLength === 1 ? '' : 's'} long (got ${length})`,
      });
    }
    if (typeof schema.pattern === 'string') {
      let re: RegExp | undefined;
      for (const flags of ['u', '']) {
        try {
          re = new RegExp(schema.pattern, flags);
          break;
        } catch {
          re = undefined; // a Python-only regex construct: leave it to the runtime
        }
      }
      if (re !== undefined && !re.test(value)) {
        problems.push({ field, message: `must match pattern ${schema.pattern}` });
      }
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) {
      problems.push({ field, message: `must have at least ${schema.minItems} items (got ${value.length})` });
    }
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) {
      problems.push({ field, message: `must have at most ${schema.maxItems} items (got ${value.length})` });
    }
    const items = resolveSchema(doc, schema.items);
    if (items !== undefined) {
      value.forEach((item, i) => problems.push(...checkValue(item, items, doc, `${field}.${i}`, fromText)));
    }
  }
  return problems;
}

/**
 * Validates an input object against the Input (or TrainingInput) component before the model is
 * started. Returns one problem per field (unknown names, explicit nulls, missing required inputs,
 * wrong types, enum mismatches, minimum/maximum, minLength/maxLength, pattern); empty when valid
 * or when the schema has no input component to validate against.
 */
export function validateInputs(
  inputs: Readonly<Record<string, unknown>>,
  schema: OpenApiDoc | undefined,
  mode: RunMode,
  /** `fromText`: the inputs came from `-i` (text coerced by the schema), not from --json */
  options: { readonly fromText?: boolean } = {},
): InputProblem[] {
  const component = inputComponent(schema, mode);
  if (component === undefined) return [];
  const props = propertiesOf(component);
  const required = new Set(
    Array.isArray(component.required)
      ? component.required.filter((r): r is string => typeof r === 'string')
      : [],
  );
  const problems: InputProblem[] = [];

  const unknown = Object.keys(inputs)
    .filter((n) => !Object.hasOwn(props, n))
    .sort();
  const valid = Object.keys(props).sort();
  for (const name of unknown) {
    problems.push({
      field: name,
      message:
        valid.length === 0
          ? 'unknown input; model does not accept inputs'
          : `unknown input; valid inputs are: ${valid.join(', ')}`,
    });
  }

  for (const name of orderedNames(component)) {
    const has = Object.hasOwn(inputs, name);
    const value = has ? inputs[name] : undefined;
    if (!has || value === undefined) {
      if (required.has(name)) problems.push({ field: name, message: 'required input is missing' });
      continue;
    }
    if (value === null) {
      // the runtime validates strictly and ignores `nullable`: omitting the input is the way to get null
      problems.push({ field: name, message: 'must not be null (omit the input to use its default)' });
      continue;
    }
    const prop = resolveSchema(schema, props[name]);
    if (prop !== undefined)
      problems.push(...checkValue(value, prop, schema, name, options.fromText === true));
  }
  return problems;
}

/** Upstream's per-field message: "The inputs you passed could not be validated:\n - name: msg". */
export function formatValidationErrors(problems: readonly InputProblem[]): string {
  const lines = problems.map((p) => ` - ${p.field}: ${p.message}`);
  return `The inputs you passed could not be validated:\n${lines.join('\n')}`;
}

/** The CogError the CLI raises for invalid inputs, with upstream's usage hints. */
export function inputValidationError(problems: readonly InputProblem[], mode: RunMode = 'predict'): CogError {
  return new CogError(formatValidationErrors(problems), {
    hint: `provide an input with -i, e.g. \`cog ${commandOf(mode)} -i blur=3.5\`; prefix a local file with @ to send its contents, e.g. \`cog ${commandOf(mode)} -i image=@photo.jpg\``,
  });
}

/**
 * The per-field problems of a runtime 422 body {"detail":[{loc:["body","input",name],msg,type}]}, or
 * undefined when the body does not have that shape.
 */
export function problemsFrom422(body: unknown): InputProblem[] | undefined {
  if (!isRecord(body) || !Array.isArray(body.detail)) return undefined;
  const problems: InputProblem[] = [];
  for (const d of body.detail) {
    if (!isRecord(d) || !Array.isArray(d.loc) || typeof d.msg !== 'string') return undefined;
    const loc = d.loc.map((l) => (typeof l === 'string' || typeof l === 'number' ? String(l) : ''));
    if (loc.length < 3 || loc[0] !== 'body' || loc[1] !== 'input') return undefined;
    problems.push({ field: loc.slice(2).join('.'), message: d.msg });
  }
  return problems;
}

/**
 * Turns a runtime 422 response body into the per-field message; a body of another shape is shown
 * as it is, as upstream does.
 */
export function format422(body: unknown, mode: RunMode = 'predict'): string {
  const problems = problemsFrom422(body);
  if (problems !== undefined) return formatValidationErrors(problems);
  const endpoint = mode === 'train' ? '/trainings' : '/predictions';
  const shown = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
  return `${endpoint} call returned status 422, and there was an unexpected message in response:\n\n${shown}`;
}
