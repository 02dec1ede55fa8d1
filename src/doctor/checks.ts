/**
 * `cog doctor`'s checks, in upstream's order: the config (parse, schema, predict→run, deprecated
 * fields, the predictor reference), the predictor's Python (pydantic workaround, removed imports,
 * return annotations) and the environment (BuildKit instead of Docker, local Python, GPU kernels).
 * Each check reads a DoctorContext and returns findings; nothing here touches the disk or the network
 * (the context's probes do, see cli/doctor.ts).
 */
import { type Expr, PythonSyntaxError, type Stmt, dottedName, parseModule } from '../schema/pyparse.js';
import { topLevelPredict } from './config-text.js';
import { type FileEdits, fixPredictToRun, fixPydanticBaseModel, fixRemovedImport } from './fixes.js';

export type Severity = 'error' | 'warning' | 'info';
export type CheckGroup = 'Config' | 'Python' | 'Environment';

export interface Finding {
  readonly severity: Severity;
  readonly message: string;
  /** project-relative file and 1-based line the finding is about */
  readonly file?: string;
  readonly line?: number;
  /** what to do about it */
  readonly remediation?: string;
  /** the class the finding is about, for its fix */
  readonly className?: string;
}

/** A check's answer: findings, or why it did not look (shown beside a passing check). */
export interface CheckResult {
  readonly findings: readonly Finding[];
  readonly skipped?: string;
  /** what the check saw when all is well, e.g. the daemon's version */
  readonly detail?: string;
}

export interface Check {
  readonly id: string;
  readonly group: CheckGroup;
  readonly description: string;
  run(context: DoctorContext): Promise<CheckResult> | CheckResult;
  /** `--fix`: the edits that resolve this check's findings (throws FixRefused when it will not) */
  fix?(context: DoctorContext, findings: readonly Finding[]): FileEdits;
}

/** What the buildkit probe found: the daemon's address, version and platforms, or why it failed. */
export type BuildkitProbe =
  | {
      readonly ok: true;
      readonly address: string;
      readonly version: string;
      readonly platforms: readonly string[];
    }
  | { readonly ok: false; readonly error: string };

export interface DoctorContext {
  /** the config file's name as given (-f), e.g. cog.yaml */
  readonly configFile: string;
  /** its text; undefined when no such file was found from the working directory up */
  readonly configText: string | undefined;
  /** why there is no text, as finding the file said (a directory, not found): message and hint */
  readonly configMissing?: { readonly message: string; readonly hint?: string | undefined };
  /** YAML syntax problems, formatted with their position */
  readonly parseErrors: readonly string[];
  /** loading (schema, completion) failed with this message; undefined when it loaded or did not parse */
  readonly loadError: string | undefined;
  /** the loaded config, when it loaded */
  readonly config:
    | {
        readonly predict: string | null;
        readonly train: string | null;
        readonly pythonVersion: string | null;
        readonly gpu: boolean;
        readonly cuda: string | null;
        readonly torch: string | null;
        /** cog.yaml's image and model (where cog push goes) */
        readonly image?: string | null;
        readonly model?: string | null;
        /** the loader's warnings (deprecated fields), as `field` and formatted text */
        readonly warnings: readonly { readonly field: string; readonly text: string }[];
      }
    | undefined;
  /** a project file's text; undefined when it does not exist */
  readFile(relativePath: string): string | undefined;
  /** the project's Python files, project-relative (hidden directories and virtualenvs left out) */
  pythonFiles(): readonly string[];
  readonly env: NodeJS.ProcessEnv;
  probeBuildkit(): Promise<BuildkitProbe>;
  /** `python3 --version` (else `python`): e.g. "3.11.2"; undefined when none is on PATH */
  localPythonVersion(): Promise<string | undefined>;
  /** the compute capabilities of this machine's NVIDIA GPUs, e.g. ["9.0"]; empty without nvidia-smi */
  gpuComputeCapabilities(): Promise<readonly string[]>;
  /**
   * where `cog push` would push (cog.yaml's image, else model) and whether credentials for its registry
   * are stored (never the credentials themselves); undefined when the config names neither
   */
  pushCredentials(): Promise<PushCredentials | undefined>;
}

export type PushCredentials =
  | { readonly registry: string; readonly found: boolean; readonly from?: string }
  | { readonly registry: string; readonly error: string }
  /** the config's `image`/`model` (`field`) is no image reference: `problem` says why */
  | { readonly field: 'image' | 'model'; readonly problem: string };

const pass = (detail?: string): CheckResult => ({ findings: [], ...(detail ? { detail } : {}) });
const skip = (why: string): CheckResult => ({ findings: [], skipped: why });

const configParse: Check = {
  id: 'config-parse',
  group: 'Config',
  description: 'Config parsing',
  run: (ctx) => {
    if (ctx.configText === undefined)
      return {
        findings: [
          {
            severity: 'error',
            message: ctx.configMissing?.message ?? `${ctx.configFile} not found`,
            remediation: ctx.configMissing?.hint ?? 'Run "cog init" to create a cog.yaml',
          },
        ],
      };
    return {
      findings: ctx.parseErrors.map((error) => ({
        severity: 'error' as const,
        message: `${ctx.configFile} has invalid YAML: ${error}`,
        remediation: `Fix the YAML syntax in ${ctx.configFile}`,
      })),
    };
  },
};

const configSchema: Check = {
  id: 'config-schema',
  group: 'Config',
  description: 'Config schema',
  run: (ctx) => {
    if (ctx.configText === undefined || ctx.parseErrors.length > 0) return skip('the config did not parse');
    if (ctx.loadError === undefined) return pass();
    return {
      findings: [
        {
          severity: 'error',
          message: `${ctx.configFile} validation failed: ${ctx.loadError}`,
          remediation: `Fix the configuration errors in ${ctx.configFile}`,
        },
      ],
    };
  },
};

const predictToRun: Check = {
  id: 'predict-to-run-migration',
  group: 'Config',
  description: 'Deprecated predict interface names',
  run: (ctx) => {
    const predict = ctx.configText === undefined ? undefined : topLevelPredict(ctx.configText);
    if (!predict) return pass();
    const findings: Finding[] = [
      {
        severity: 'warning',
        message: `predict in ${ctx.configFile} is deprecated; use run with run.py:Runner`,
        file: ctx.configFile,
        line: predict.line,
        // the fix migrates only the starter project; other references are a rename by hand
        remediation:
          predict.value === 'predict.py:Predictor'
            ? 'Run cog doctor --fix to migrate predict: to run:'
            : `rename predict: to run: in ${ctx.configFile} (same value)`,
      },
    ];
    // upstream's migration target: the starter project's predict.py:Predictor
    const source = predict.value === 'predict.py:Predictor' ? ctx.readFile('predict.py') : undefined;
    const module = source === undefined ? undefined : tryParse(source);
    if (module?.some((s) => s.k === 'class' && s.name === 'Predictor')) {
      findings.push({
        severity: 'warning',
        message: 'predict.py uses deprecated Predictor/BasePredictor/predict() names',
        file: 'predict.py',
        remediation: 'Run cog doctor --fix to migrate to Runner/BaseRunner/run()',
      });
    }
    return { findings };
  },
  fix: (ctx) => fixPredictToRun(ctx),
};

const deprecatedFields: Check = {
  id: 'config-deprecated-fields',
  group: 'Config',
  description: 'Deprecated fields',
  run: (ctx) => {
    if (!ctx.config) return skip('the config did not load');
    // `predict` has a check of its own, above
    const warnings = ctx.config.warnings.filter((w) => w.field !== 'predict');
    return {
      findings: warnings.map((w) => ({ severity: 'warning' as const, message: w.text })),
    };
  },
};

function tryParse(source: string): readonly Stmt[] | undefined {
  try {
    return parseModule(source);
  } catch {
    return undefined;
  }
}

/** `file.py:Name` split, or undefined when the reference is not of that form. */
export function splitReference(ref: string): { file: string; name: string } | undefined {
  const match = /^(.+\.py):([A-Za-z_][A-Za-z0-9_]*)$/.exec(ref);
  return match ? { file: match[1] as string, name: match[2] as string } : undefined;
}

/** The module of a reference's file, or the finding that says why it cannot be read. */
function moduleOf(ctx: DoctorContext, file: string): { module: readonly Stmt[] } | { finding: Finding } {
  const source = ctx.readFile(file);
  if (source === undefined)
    return {
      finding: {
        severity: 'error',
        message: `${file} not found`,
        remediation: `Create ${file} or update the reference in ${ctx.configFile}`,
      },
    };
  try {
    return { module: parseModule(source) };
  } catch (err) {
    const reason = err instanceof PythonSyntaxError ? err.message : String(err);
    return { finding: { severity: 'error', message: `cannot parse ${file}: ${reason}`, file } };
  }
}

/** The model's references: cog.yaml's run (or predict) and train. */
function references(ctx: DoctorContext): { key: 'run' | 'train'; ref: string }[] {
  const refs: { key: 'run' | 'train'; ref: string }[] = [];
  if (ctx.config?.predict) refs.push({ key: 'run', ref: ctx.config.predict });
  if (ctx.config?.train) refs.push({ key: 'train', ref: ctx.config.train });
  return refs;
}

const predictReference: Check = {
  id: 'config-predict-ref',
  group: 'Config',
  description: 'Predict reference',
  run: (ctx) => {
    const refs = references(ctx);
    if (refs.length === 0)
      return skip(ctx.config ? 'no run, predict or train in the config' : 'the config did not load');
    const findings: Finding[] = [];
    for (const { key, ref } of refs) {
      const parts = splitReference(ref);
      if (!parts) {
        findings.push({
          severity: 'error',
          message: `${key} reference "${ref}" must be in the form 'file.py:ClassName'`,
          remediation: `Set ${key} to "predict.py:Predictor" (file and class) in ${ctx.configFile}`,
        });
        continue;
      }
      const read = moduleOf(ctx, parts.file);
      if ('finding' in read) {
        findings.push(read.finding);
        continue;
      }
      const defined = read.module.filter((s) => s.k === 'class' || s.k === 'def');
      if (defined.some((s) => (s.k === 'class' || s.k === 'def') && s.name === parts.name)) continue;
      const classes = read.module.flatMap((s) => (s.k === 'class' ? [s.name] : []));
      findings.push({
        severity: 'error',
        message: `class "${parts.name}" not found in ${parts.file}${classes.length > 0 ? `; found: ${classes.join(', ')}` : ''}`,
        file: parts.file,
        remediation: `Add class ${parts.name} to ${parts.file} or update ${key} in ${ctx.configFile}`,
      });
    }
    return { findings };
  },
};

/** The Python files the model's references name, parsed (those that parse). */
function modelModules(ctx: DoctorContext): { file: string; module: readonly Stmt[] }[] {
  const files = new Set(references(ctx).flatMap(({ ref }) => splitReference(ref)?.file ?? []));
  return [...files].flatMap((file) => {
    const source = ctx.readFile(file);
    const module = source === undefined ? undefined : tryParse(source);
    return module ? [{ file, module }] : [];
  });
}

/** Local names a module binds to `module.attr` by `from module import attr [as name]`. */
function importedAs(module: readonly Stmt[], from: string, attr: string): Set<string> {
  const names = new Set<string>();
  for (const s of module)
    if (s.k === 'from' && s.module === from)
      for (const n of s.names) if (n.name === attr) names.add(n.alias ?? n.name);
  return names;
}

/** Local names a module binds to the module `name` by `import name [as alias]`. */
function moduleAliases(module: readonly Stmt[], name: string): Set<string> {
  const aliases = new Set<string>();
  for (const s of module)
    if (s.k === 'import') for (const n of s.names) if (n.module === name) aliases.add(n.alias ?? n.module);
  return aliases;
}

function isArbitraryTypesConfig(
  value: Expr | undefined,
  configDict: Set<string>,
  pydantic: Set<string>,
): boolean {
  if (value?.k !== 'call') return false;
  const callee = dottedName(value.func) ?? '';
  const isConfigDict =
    configDict.has(callee) || [...pydantic].some((alias) => callee === `${alias}.ConfigDict`);
  return (
    isConfigDict &&
    value.kwargs.some(
      (kw) => kw.name === 'arbitrary_types_allowed' && kw.value.k === 'bool' && kw.value.value,
    )
  );
}

const pydanticBaseModel: Check = {
  id: 'python-pydantic-basemodel',
  group: 'Python',
  description: 'Pydantic BaseModel workaround',
  run: (ctx) => {
    const findings: Finding[] = [];
    for (const { file, module } of modelModules(ctx)) {
      const baseModel = importedAs(module, 'pydantic', 'BaseModel');
      const configDict = importedAs(module, 'pydantic', 'ConfigDict');
      const pydantic = moduleAliases(module, 'pydantic');
      for (const s of module) {
        if (s.k !== 'class') continue;
        const fromPydantic = s.bases.some((base) => {
          const name = dottedName(base) ?? '';
          return baseModel.has(name) || [...pydantic].some((alias) => name === `${alias}.BaseModel`);
        });
        const workaround = s.body.some(
          (b) =>
            b.k === 'assign' &&
            dottedName(b.target) === 'model_config' &&
            isArbitraryTypesConfig(b.value, configDict, pydantic),
        );
        if (fromPydantic && workaround)
          findings.push({
            severity: 'error',
            message: `${s.name} inherits from pydantic.BaseModel with arbitrary_types_allowed; use cog.BaseModel instead`,
            file,
            line: s.line,
            remediation:
              'Replace pydantic.BaseModel with cog.BaseModel and remove ConfigDict(arbitrary_types_allowed=True)',
            className: s.name,
          });
      }
    }
    return { findings };
  },
  fix: (ctx, findings) => {
    const byFile = new Map<string, string[]>();
    for (const f of findings)
      if (f.file && f.className) byFile.set(f.file, [...(byFile.get(f.file) ?? []), f.className]);
    return {
      write: [...byFile].flatMap(([file, classes]) => fixPydanticBaseModel(ctx, file, classes).write),
      remove: [],
    };
  },
};

/** Names cog no longer has: importing them fails when the model starts. */
const removedImports: readonly { module: string; name: string; message: string; remediation: string }[] = [
  {
    module: 'cog.types',
    name: 'ExperimentalFeatureWarning',
    message:
      'ExperimentalFeatureWarning was removed in cog 0.17; current_scope().record_metric() is no longer experimental',
    remediation: 'Remove the import of ExperimentalFeatureWarning from cog.types',
  },
];

const deprecatedImports: Check = {
  id: 'python-deprecated-imports',
  group: 'Python',
  description: 'Deprecated imports',
  run: (ctx) => {
    const findings: Finding[] = [];
    for (const { file, module } of modelModules(ctx))
      for (const s of module)
        if (s.k === 'from')
          for (const removed of removedImports)
            if (s.module === removed.module && s.names.some((n) => n.name === removed.name))
              findings.push({
                severity: 'error',
                message: removed.message,
                file,
                line: s.line,
                remediation: removed.remediation,
              });
    return { findings };
  },
  fix: (ctx, findings) => {
    const files = [...new Set(findings.flatMap((f) => (f.file ? [f.file] : [])))];
    // each removal reads what the one before it wrote
    const written = new Map<string, string>();
    const view: DoctorContext = { ...ctx, readFile: (path) => written.get(path) ?? ctx.readFile(path) };
    for (const r of removedImports)
      for (const { path, content } of fixRemovedImport(view, files, r.module, r.name).write)
        written.set(path, content);
    return { write: [...written].map(([path, content]) => ({ path, content })), remove: [] };
  },
};

const typeAnnotations: Check = {
  id: 'python-missing-type-annotations',
  group: 'Python',
  description: 'Type annotations',
  run: (ctx) => {
    if (!ctx.config) return skip('the config did not load');
    const findings: Finding[] = [];
    for (const { key, ref } of references(ctx)) {
      const parts = splitReference(ref);
      const source = parts && ctx.readFile(parts.file);
      const module = source === undefined || source === null ? undefined : tryParse(source);
      if (!parts || !module) continue;
      const target = module.find((s) => (s.k === 'class' || s.k === 'def') && s.name === parts.name);
      let method: (Stmt & { k: 'def' }) | undefined;
      let owner = '';
      if (target?.k === 'def') method = target;
      else if (target?.k === 'class') {
        const defs = target.body.filter((b): b is Stmt & { k: 'def' } => b.k === 'def');
        const names = key === 'train' ? ['train'] : ['run', 'predict'];
        method = names.map((n) => defs.find((d) => d.name === n)).find((d) => d !== undefined);
        owner = `${target.name}.`;
      }
      if (method && method.returns === undefined)
        findings.push({
          severity: 'warning',
          message: `${owner}${method.name}() is missing a return type annotation`,
          file: parts.file,
          line: method.line,
          remediation: `Add a return type annotation: def ${method.name}(self, ...) -> YourType:`,
        });
    }
    return { findings };
  },
};

const buildkitCheck: Check = {
  id: 'env-buildkit',
  group: 'Environment',
  description: 'BuildKit',
  run: async (ctx) => {
    for (const variable of ['COG_SKIP_BUILDKIT_CHECK', 'COG_SKIP_DOCKER_CHECK'])
      if (ctx.env[variable]) return skip(`${variable} is set`);
    const probe = await ctx.probeBuildkit();
    if (probe.ok)
      return pass(`buildkitd ${probe.version} at ${probe.address}; platforms ${probe.platforms.join(', ')}`);
    return {
      findings: [
        {
          severity: 'error',
          message: `BuildKit is not available: ${probe.error}`,
          remediation:
            'set BUILDKIT_HOST to a running buildkitd (unix:///PATH or tcp://HOST:PORT), or put buildkitd (v0.32) and runc on PATH so cog can start one',
        },
      ],
    };
  },
};

/** Registries that never take an anonymous push. */
const authOnlyRegistries = new Set(['r8.im', 'docker.io']);

const registryCredentials: Check = {
  id: 'env-registry-credentials',
  group: 'Environment',
  description: 'Registry credentials',
  run: async (ctx) => {
    if (!ctx.config) return skip('the config did not load');
    const target = await ctx.pushCredentials();
    if (!target) return skip('no image or model in the config to push to');
    if ('problem' in target)
      return {
        findings: [
          {
            severity: 'error',
            message: `'${target.field}' in ${ctx.configFile}: ${target.problem}`,
            remediation:
              'write it as [registry/]repository[:tag], e.g. r8.im/user/model; cog build and cog push refuse it too',
          },
        ],
      };
    if ('error' in target)
      return {
        findings: [
          {
            severity: 'warning',
            message: `cannot read the credentials for ${target.registry}: ${target.error}`,
            remediation: /docker-credential-/.test(target.error)
              ? `fix the credential helper the message names (set in the docker config's credsStore or credHelpers), or run cog login ${target.registry}`
              : `fix the file the message names (the docker config: $DOCKER_CONFIG/config.json, else ~/.docker/config.json), or run cog login ${target.registry}`,
          },
        ],
      };
    if (target.found)
      return pass(`credentials for ${target.registry}${target.from ? ` from ${target.from}` : ''}`);
    const required = authOnlyRegistries.has(target.registry);
    return {
      findings: [
        {
          severity: required ? 'warning' : 'info',
          message: required
            ? `no credentials for ${target.registry}: cog push will be refused`
            : `no credentials stored for ${target.registry} (fine for a registry that takes anonymous pushes)`,
          remediation: `cog login ${target.registry}, or set COG_REGISTRY_USERNAME and COG_REGISTRY_PASSWORD in CI`,
        },
      ],
    };
  },
};

const majorMinor = (version: string) => version.split('.').slice(0, 2).join('.');

const pythonVersion: Check = {
  id: 'env-python-version',
  group: 'Environment',
  description: 'Python version',
  run: async (ctx) => {
    const local = await ctx.localPythonVersion();
    if (local === undefined)
      return {
        findings: [
          {
            severity: 'warning',
            message: 'Python not found in PATH',
            remediation:
              'Install Python 3.10+ or ensure it is on your PATH (builds do not need it; editors and local tests do)',
          },
        ],
      };
    const wanted = ctx.config?.pythonVersion;
    if (!wanted || majorMinor(local) === majorMinor(wanted)) return pass(`local Python ${local}`);
    return {
      findings: [
        {
          severity: 'warning',
          message: `local Python is ${majorMinor(local)} but ${ctx.configFile} specifies ${majorMinor(wanted)}`,
          remediation:
            'This is usually fine: builds use the configured version. Update the config or your local Python if needed.',
        },
      ],
    };
  },
};

/** The oldest torch (and the CUDA it must be built against) that has kernels for a compute capability. */
const kernelFloors: readonly { capability: string; torch: string; cuda: string }[] = [
  { capability: '12.0', torch: '2.7.0', cuda: '12.8' },
  { capability: '10.0', torch: '2.7.0', cuda: '12.8' },
  { capability: '9.0', torch: '2.0.1', cuda: '11.8' },
];

/** Compares dotted versions numerically (a `+local` suffix ignored). */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) =>
    v
      .replace(/\+.*$/, '')
      .split('.')
      .map((p) => Number.parseInt(p, 10) || 0);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The floor for a GPU: the strictest floor at or below its capability; undefined for older GPUs. */
export function kernelFloor(capability: string): { torch: string; cuda: string } | undefined {
  const floor = kernelFloors.find((f) => compareVersions(capability, f.capability) >= 0);
  return floor && { torch: floor.torch, cuda: floor.cuda };
}

const gpuCompatibility: Check = {
  id: 'env-gpu-compat',
  group: 'Environment',
  description: 'GPU compatibility',
  run: async (ctx) => {
    if (ctx.env.COG_SKIP_GPU_CHECK) return skip('COG_SKIP_GPU_CHECK is set');
    if (!ctx.config?.gpu) return skip('not a GPU model');
    const torch = ctx.config.torch;
    if (!torch || !/^\d+(\.\d+)*(\+\w+)?$/.test(torch)) return skip('torch is not pinned to one version');
    const capabilities = [...new Set(await ctx.gpuComputeCapabilities())].sort(compareVersions);
    if (capabilities.length === 0) return skip('no NVIDIA GPU on this machine (nvidia-smi)');
    const findings: Finding[] = [];
    for (const capability of capabilities) {
      const floor = kernelFloor(capability);
      if (!floor) continue;
      const cuda = ctx.config.cuda;
      const tooOld =
        compareVersions(torch, floor.torch) < 0 || cuda === null || compareVersions(cuda, floor.cuda) < 0;
      if (!tooOld) continue;
      const sm = `sm_${capability.replace('.', '')}`;
      findings.push({
        severity: 'warning',
        message: `torch==${torch} (CUDA ${cuda ?? 'unset'}) ships no kernels for ${sm}, the compute capability of this machine's GPU. The image will build, but every CUDA operation in it will fail at runtime with "no kernel image is available for execution on the device".`,
        remediation: `${sm} requires torch>=${floor.torch} built against CUDA>=${floor.cuda}. Pin a newer torch, or set COG_SKIP_GPU_CHECK=1 if you are building for a different GPU than the one in this machine.`,
      });
    }
    return { findings };
  },
};

/** Every check, in the order they run and print. */
export const doctorChecks: readonly Check[] = [
  configParse,
  configSchema,
  predictToRun,
  deprecatedFields,
  predictReference,
  pydanticBaseModel,
  deprecatedImports,
  typeAnnotations,
  buildkitCheck,
  registryCredentials,
  pythonVersion,
  gpuCompatibility,
];
