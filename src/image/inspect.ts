/**
 * What `cog inspect` shows about a model image, worked out from its manifest and config alone (no layer
 * is ever read): labels, the completed cog config, the OpenAPI schema with its inputs and outputs, the
 * platform and the size. Pure: the command fetches the JSON, this module reads and formats it.
 */
import { CogError } from '../errors.js';

export interface LayerSummary {
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
}

export interface SchemaField {
  readonly name: string;
  readonly type: string;
  readonly required: boolean;
  readonly default?: unknown;
  readonly description?: string;
  readonly choices?: readonly unknown[];
}

export interface ImageInspection {
  /** what was inspected, fully qualified (registry) or the store name (local) */
  readonly reference: string;
  /** `registry` or `local` (the local image store) */
  readonly source: 'registry' | 'local';
  /** digest of what the reference names (an index when it names one) */
  readonly digest: string;
  readonly mediaType: string;
  /** the image manifest's digest when the reference names an index */
  readonly manifestDigest: string;
  /** `os/architecture[/variant]` */
  readonly platform: string;
  readonly created: string | undefined;
  /** layers plus config, in bytes (compressed, as stored) */
  readonly size: number;
  readonly labels: Readonly<Record<string, string>>;
  /** run.cog.config parsed */
  readonly config: Record<string, unknown>;
  readonly openapiSchema: Record<string, unknown> | undefined;
  readonly cogVersion: string | undefined;
  readonly layers: readonly LayerSummary[];
}

export interface InspectInput {
  readonly reference: string;
  readonly source: 'registry' | 'local';
  readonly digest: string;
  readonly mediaType: string;
  readonly manifestDigest: string;
  readonly manifest: {
    readonly config?: { readonly digest: string; readonly size?: number; readonly mediaType?: string };
    readonly layers?: readonly {
      readonly digest: string;
      readonly size: number;
      readonly mediaType?: string;
    }[];
  };
  /** the image config JSON */
  readonly config: Record<string, unknown>;
}

export const cogConfigLabel = 'run.cog.config';
/** what images built by old Cog versions carry instead */
const legacyConfigLabel = 'org.cogmodel.config';

export class NotACogImageError extends CogError {
  constructor(reference: string) {
    super(`${reference} is not a Cog model image (it has no ${cogConfigLabel} label)`, {
      hint: 'cog inspect reads images made by `cog build` or `cog push`; for other images use `skopeo inspect`',
    });
  }
}

function parseJsonLabel(labels: Record<string, string>, name: string, reference: string): unknown {
  const text = labels[name];
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CogError(`the ${name} label of ${reference} is not JSON`, {
      hint: 'the image was built by a broken tool; rebuild it with `cog build`',
    });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads the manifest and config into an inspection; throws NotACogImageError without run.cog.config. */
export function inspectImage(input: InspectInput): ImageInspection {
  const imageConfig = isObject(input.config.config) ? input.config.config : {};
  const rawLabels = isObject(imageConfig.Labels) ? imageConfig.Labels : {};
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawLabels)) if (typeof v === 'string') labels[k] = v;
  const configName = labels[cogConfigLabel] !== undefined ? cogConfigLabel : legacyConfigLabel;
  const config = parseJsonLabel(labels, configName, input.reference);
  if (!isObject(config)) throw new NotACogImageError(input.reference);
  const schema = parseJsonLabel(labels, 'run.cog.openapi_schema', input.reference);
  const layers = (input.manifest.layers ?? []).map((l) => ({
    digest: l.digest,
    size: l.size,
    mediaType: l.mediaType ?? '',
  }));
  const size = layers.reduce((sum, l) => sum + l.size, 0) + (input.manifest.config?.size ?? 0);
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const platform = [str(input.config.os), str(input.config.architecture), str(input.config.variant)]
    .filter((p) => p !== undefined)
    .join('/');
  return {
    reference: input.reference,
    source: input.source,
    digest: input.digest,
    mediaType: input.mediaType,
    manifestDigest: input.manifestDigest,
    platform: platform || 'unknown',
    created: str(input.config.created),
    size,
    labels,
    config,
    openapiSchema: isObject(schema) ? schema : undefined,
    cogVersion: labels['run.cog.version'],
    layers,
  };
}

/** The JSON `cog inspect --json` prints. */
export function inspectionJson(i: ImageInspection): Record<string, unknown> {
  return {
    reference: i.reference,
    source: i.source,
    digest: i.digest,
    mediaType: i.mediaType,
    manifestDigest: i.manifestDigest,
    platform: i.platform,
    created: i.created ?? null,
    size: i.size,
    cogVersion: i.cogVersion ?? null,
    labels: i.labels,
    config: i.config,
    openapiSchema: i.openapiSchema ?? null,
    layers: i.layers,
  };
}

type SchemaMap = Record<string, Record<string, unknown>>;

function schemas(schema: Record<string, unknown> | undefined): SchemaMap {
  const components = isObject(schema?.components) ? schema.components : {};
  return (isObject(components.schemas) ? components.schemas : {}) as SchemaMap;
}

/** `#/components/schemas/Foo` → the Foo schema (one level; enough for Cog's Input/Output). */
function deref(node: Record<string, unknown>, all: SchemaMap): Record<string, unknown> {
  const ref = node.$ref;
  if (typeof ref === 'string' && ref.startsWith('#/components/schemas/'))
    return all[ref.slice('#/components/schemas/'.length)] ?? node;
  const allOf = node.allOf;
  if (Array.isArray(allOf) && allOf.length === 1 && isObject(allOf[0])) return deref(allOf[0], all);
  return node;
}

/** A short type name for a schema node: `string`, `integer`, `file` (uri), `list[string]`, `a | b`. */
export function typeName(node: Record<string, unknown>, all: SchemaMap = {}): string {
  const resolved = deref(node, all);
  if (resolved !== node) return typeName(resolved, all);
  const type = resolved.type;
  if (type === 'string' && resolved.format === 'uri') return 'file';
  if (type === 'array' && isObject(resolved.items)) return `list[${typeName(resolved.items, all)}]`;
  if (Array.isArray(resolved.anyOf))
    return resolved.anyOf
      .filter(isObject)
      .map((n) => typeName(n, all))
      .join(' | ');
  if (typeof type === 'string') return type;
  if (isObject(resolved.properties)) return 'object';
  return 'any';
}

/** The fields of an object schema (Input, TrainingInput), in `x-order`. */
export function schemaFields(name: string, schema: Record<string, unknown> | undefined): SchemaField[] {
  const all = schemas(schema);
  const node = all[name];
  if (!node || !isObject(node.properties)) return [];
  const required = new Set(Array.isArray(node.required) ? node.required.map(String) : []);
  const entries = Object.entries(node.properties).filter((e): e is [string, Record<string, unknown>] =>
    isObject(e[1]),
  );
  const order = (p: Record<string, unknown>) => (typeof p['x-order'] === 'number' ? p['x-order'] : 1e9);
  entries.sort((a, b) => order(a[1]) - order(b[1]));
  return entries.map(([field, prop]) => {
    const resolved = deref(prop, all);
    const choices = Array.isArray(resolved.enum) ? resolved.enum : undefined;
    return {
      name: field,
      type: typeName(prop, all),
      required: required.has(field),
      ...('default' in prop ? { default: prop.default } : {}),
      ...(typeof prop.description === 'string' ? { description: prop.description } : {}),
      ...(choices ? { choices } : {}),
    };
  });
}

/** The output type of Output / TrainingOutput, or undefined when the schema has none. */
export function outputType(name: string, schema: Record<string, unknown> | undefined): string | undefined {
  const all = schemas(schema);
  const node = all[name];
  if (!node) return undefined;
  if (node.type === 'array' && node['x-cog-array-type'] === 'iterator' && isObject(node.items))
    return `iterator[${typeName(node.items, all)}]`;
  return typeName(node, all);
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** Bytes in binary units with one decimal: `81.9 MiB`, `512 B`. */
export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A package's version from a pip freeze listing (`torch==2.3.1`), if it is there. */
export function frozenVersion(pipFreeze: string | undefined, name: string): string | undefined {
  if (!pipFreeze) return undefined;
  const wanted = name.toLowerCase().replace(/[-_.]+/g, '-');
  for (const line of pipFreeze.split('\n')) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;]+)/.exec(line.trim());
    if (m?.[1] && m[1].toLowerCase().replace(/[-_.]+/g, '-') === wanted) return m[2];
  }
  return undefined;
}

function torchVersion(i: ImageInspection): string | undefined {
  const frozen = frozenVersion(i.labels['run.cog.pip_freeze'], 'torch');
  if (frozen) return frozen;
  const build = isObject(i.config.build) ? i.config.build : {};
  const packages = Array.isArray(build.python_packages) ? build.python_packages.map(String) : [];
  for (const p of packages) {
    const m = /^torch\s*==\s*(\S+)/.exec(p);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

function fieldLine(f: SchemaField): string {
  const parts = [`  ${f.name}: ${f.type}`];
  if (f.required) parts.push('(required)');
  else if (f.default !== undefined) parts.push(`= ${JSON.stringify(f.default)}`);
  if (f.choices) parts.push(`one of ${f.choices.map((c) => JSON.stringify(c)).join(', ')}`);
  if (f.description) parts.push(`— ${f.description}`);
  return parts.join(' ');
}

/** The human-readable view. */
export function formatInspection(i: ImageInspection): string {
  const build = isObject(i.config.build) ? i.config.build : {};
  const row = (k: string, v: string | undefined) => (v === undefined ? [] : [`${`${k}:`.padEnd(14)}${v}`]);
  const lines = [
    ...row('Reference', i.reference),
    ...row('Source', i.source === 'local' ? 'local image store' : 'registry'),
    ...row('Digest', i.digest),
    ...(i.manifestDigest !== i.digest ? row('Manifest', i.manifestDigest) : []),
    ...row('Platform', i.platform),
    ...row('Created', i.created),
    ...row('Size', `${formatSize(i.size)} (${i.layers.length} layers)`),
    ...row('Cog version', i.cogVersion),
    ...row('Python', typeof build.python_version === 'string' ? build.python_version : undefined),
    ...row(
      'GPU',
      build.gpu === true ? `yes${typeof build.cuda === 'string' ? ` (CUDA ${build.cuda})` : ''}` : 'no',
    ),
    ...row('Torch', torchVersion(i)),
    ...row('Predict', typeof i.config.predict === 'string' ? i.config.predict : undefined),
    ...row('Train', typeof i.config.train === 'string' ? i.config.train : undefined),
  ];
  const sections: [string, string, string][] = [
    ['Inputs', 'Input', 'Output'],
    ['Training inputs', 'TrainingInput', 'TrainingOutput'],
  ];
  for (const [title, input, output] of sections) {
    const fields = schemaFields(input, i.openapiSchema);
    const out = outputType(output, i.openapiSchema);
    if (fields.length === 0 && out === undefined) continue;
    lines.push('', `${title}:`);
    if (fields.length === 0) lines.push('  (none)');
    lines.push(...fields.map(fieldLine));
    if (out !== undefined) lines.push(`${title === 'Inputs' ? 'Output' : 'Training output'}: ${out}`);
  }
  if (!i.openapiSchema) lines.push('', 'OpenAPI schema: none (no run.cog.openapi_schema label)');
  return `${lines.join('\n')}\n`;
}
