// The cog.yaml schema: types of every key, checked with valibot. Unknown keys are not errors (upstream
// Cog ignores them); findUnknownKeys reports them as warnings instead.
import * as v from 'valibot';
import type { FieldPath } from './issues.js';
import type { CogConfig, RunItem, WeightConfig, WeightSource } from './types.js';

const MUST_STRING = 'must be a string';
const MUST_LIST = 'must be a list';
const MUST_MAPPING = 'must be a mapping';

const str = () => v.string(MUST_STRING);

/** valibot's object() accepts arrays (their keys are simply absent); a mapping must not be a list. */
function mapping<const E extends v.ObjectEntries>(entries: E, message: string = MUST_MAPPING) {
  return v.lazy((input) => (Array.isArray(input) ? v.never(message) : v.object(entries, message)));
}
const strList = () => v.nullish(v.array(str(), MUST_LIST));
const optStr = () => v.nullish(str());

const SecretMountSchema = mapping({
  type: v.picklist(['secret'], 'must be "secret" (the only mount type cog.yaml supports)'),
  // the name `cog build --secret id=NAME,src=FILE` gives the secret
  id: v.pipe(str(), v.regex(/\S/, 'must name the secret, as `cog build --secret id=NAME,...` does')),
  target: v.pipe(str(), v.startsWith('/', 'must be an absolute path in the build, e.g. /run/secrets/NAME')),
});

// lazy() picks the branch from the input, so a mapping with a bad field reports that field
// (a union would only say that neither branch matched).
const RunItemSchema = v.lazy((input) =>
  typeof input === 'string'
    ? str()
    : mapping(
        { command: str(), mounts: v.nullish(v.array(SecretMountSchema, MUST_LIST)) },
        'must be a string or a mapping with "command" and optional "mounts"',
      ),
);

const BuildSchema = mapping(
  {
    gpu: v.nullish(v.boolean('must be a boolean')),
    python_version: v.nullish(v.union([str(), v.number()], 'must be a string or number')),
    python_requirements: optStr(),
    python_packages: strList(),
    system_packages: strList(),
    run: v.nullish(v.array(RunItemSchema, MUST_LIST)),
    pre_install: strList(),
    cuda: optStr(),
    cudnn: optStr(),
    sdk_version: optStr(),
  },
  MUST_MAPPING,
);

const WEIGHT_SOURCE_ENTRIES = { uri: str(), include: strList(), exclude: strList() };
const WeightSourceSchema = mapping(WEIGHT_SOURCE_ENTRIES);

const WeightSchema = mapping(
  {
    name: str(),
    target: str(),
    source: v.lazy((input) =>
      Array.isArray(input)
        ? v.pipe(v.array(WeightSourceSchema, MUST_LIST), v.minLength(1, 'must not be empty'))
        : mapping(WEIGHT_SOURCE_ENTRIES, 'must be a mapping or a list of mappings with "uri"'),
    ),
  },
  MUST_MAPPING,
);

const ConcurrencySchema = mapping(
  {
    max: v.pipe(v.number('must be an integer'), v.integer('must be an integer')),
    default_target: v.nullish(v.pipe(v.number('must be an integer'), v.integer('must be an integer'))),
  },
  MUST_MAPPING,
);

export const CogYamlSchema = mapping(
  {
    build: v.nullish(BuildSchema),
    run: optStr(),
    predict: optStr(),
    train: optStr(),
    image: optStr(),
    model: optStr(),
    concurrency: v.nullish(ConcurrencySchema),
    environment: strList(),
    weights: v.nullish(v.array(WeightSchema, MUST_LIST)),
  },
  MUST_MAPPING,
);

type CogYamlOutput = v.InferOutput<typeof CogYamlSchema>;

export interface SchemaIssue {
  path: FieldPath;
  message: string;
}

/** Check the decoded YAML against the schema; every issue is reported, not just the first. */
export function checkSchema(data: unknown): { config: CogConfig | undefined; issues: SchemaIssue[] } {
  // An empty file is a valid, empty config.
  if (data === null || data === undefined) return { config: {}, issues: [] };
  const result = v.safeParse(CogYamlSchema, data, { abortEarly: false, abortPipeEarly: true });
  if (result.success) return { config: normalise(result.output), issues: [] };
  return { config: undefined, issues: dedupe(result.issues.map(toSchemaIssue)) };
}

function toSchemaIssue(issue: v.BaseIssue<unknown>): SchemaIssue {
  const path: (string | number)[] = [];
  for (const item of issue.path ?? []) {
    const key: unknown = item.key;
    if (typeof key === 'string' || typeof key === 'number') path.push(key);
  }
  // A required key that is absent shows up as an object issue whose input is undefined.
  const missing = issue.kind === 'schema' && issue.input === undefined && path.length > 0;
  return { path, message: missing ? 'is required' : issue.message };
}

function dedupe(issues: SchemaIssue[]): SchemaIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${JSON.stringify(i.path)} ${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Drop nulls (Go's decoder leaves nil pointers for them) and give every field a single shape. */
function normalise(out: CogYamlOutput): CogConfig {
  const config: CogConfig = {};
  if (out.build !== null && out.build !== undefined) {
    const b = out.build;
    const build: NonNullable<CogConfig['build']> = {};
    if (b.gpu != null) build.gpu = b.gpu;
    if (b.python_version != null) build.python_version = String(b.python_version);
    if (b.python_requirements != null) build.python_requirements = b.python_requirements;
    if (b.python_packages != null) build.python_packages = b.python_packages;
    if (b.system_packages != null) build.system_packages = b.system_packages;
    if (b.run != null) build.run = b.run.map(toRunItem);
    if (b.pre_install != null) build.pre_install = b.pre_install;
    if (b.cuda != null) build.cuda = b.cuda;
    if (b.cudnn != null) build.cudnn = b.cudnn;
    if (b.sdk_version != null) build.sdk_version = b.sdk_version;
    config.build = build;
  }
  for (const key of ['run', 'predict', 'train', 'image', 'model'] as const) {
    const value = out[key];
    if (value != null) config[key] = value;
  }
  if (out.concurrency != null) {
    config.concurrency = { max: out.concurrency.max };
    if (out.concurrency.default_target != null)
      config.concurrency.default_target = out.concurrency.default_target;
  }
  if (out.environment != null) config.environment = out.environment;
  if (out.weights != null) config.weights = out.weights.map(toWeight);
  return config;
}

function toRunItem(
  item: string | { command: string; mounts?: RunItem['mounts'] | null | undefined },
): RunItem {
  if (typeof item === 'string') return { command: item, mounts: [] };
  return { command: item.command, mounts: item.mounts ?? [] };
}

type WeightSourceOut = {
  uri: string;
  include?: string[] | null | undefined;
  exclude?: string[] | null | undefined;
};

function toWeight(w: {
  name: string;
  target: string;
  source: WeightSourceOut | WeightSourceOut[];
}): WeightConfig {
  const sources = Array.isArray(w.source) ? w.source : [w.source];
  return {
    name: w.name,
    target: w.target,
    source: sources.map((s) => {
      const out: WeightSource = { uri: s.uri };
      if (s.include != null) out.include = s.include;
      if (s.exclude != null) out.exclude = s.exclude;
      return out;
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Known keys, for unknown-key warnings

export interface KeySpec {
  /** keys allowed in a mapping at this place */
  keys?: Readonly<Record<string, KeySpec>>;
  /** spec of the items when the value is a list */
  items?: KeySpec;
}

const LEAF: KeySpec = {};
const MOUNT: KeySpec = { keys: { type: LEAF, id: LEAF, target: LEAF } };
const WEIGHT_SOURCE: KeySpec = { keys: { uri: LEAF, include: LEAF, exclude: LEAF } };
WEIGHT_SOURCE.items = { keys: WEIGHT_SOURCE.keys ?? {} };

export const BUILD_KEYS = [
  'gpu',
  'python_version',
  'python_requirements',
  'python_packages',
  'system_packages',
  'run',
  'pre_install',
  'cuda',
  'cudnn',
  'sdk_version',
] as const;

export const KNOWN_KEYS: KeySpec = {
  keys: {
    build: {
      keys: {
        ...Object.fromEntries(BUILD_KEYS.map((k) => [k, LEAF])),
        run: { items: { keys: { command: LEAF, mounts: { items: MOUNT } } } },
      },
    },
    run: LEAF,
    predict: LEAF,
    train: LEAF,
    image: LEAF,
    model: LEAF,
    concurrency: { keys: { max: LEAF, default_target: LEAF } },
    environment: LEAF,
    weights: { items: { keys: { name: LEAF, target: LEAF, source: WEIGHT_SOURCE } } },
  },
};
