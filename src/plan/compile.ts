/**
 * BuildPlan → LLB. Steps that depend on nothing before them (files from other images, the project
 * source) are built as separate layers and merged, so BuildKit runs them in parallel with the
 * dependency installs, and a source change re-runs nothing but the source copy. With separate weights,
 * the weights are one more such layer, between the dependencies and the source.
 */
import type { OciImageConfig } from '../buildkit/gateway.js';
import { withoutCommaSpace } from '../buildkit/patterns.js';
import { FileActions, type Mount, type State, diff, image, local, merge, scratch } from '../llb/index.js';
import type { BuildPlan, PlanStep } from './types.js';
import { weightIncludes } from './weights.js';

/** The variable a build.run step with secrets carries its secrets' content key in. */
export const secretsKeyEnv = 'COG_BUILD_SECRETS_KEY';

export interface CompileOptions {
  /** the base image's config (from the registry), whose env later steps inherit */
  readonly baseConfig: OciImageConfig;
  /** the base image's manifest digest: pins the base so the graph is reproducible */
  readonly baseDigest?: string;
  /** a stable key per project, so repeated transfers of the context are incremental */
  readonly sharedKeyHint?: string;
  /** --timestamp (SOURCE_DATE_EPOCH): the `created` of the history entries of the layers the plan adds */
  readonly sourceDateEpoch?: number;
}

/** One entry of an image config's history. */
export type HistoryEntry = NonNullable<OciImageConfig['history']>[number];

export interface CompiledBuild {
  /** the model image's filesystem */
  readonly image: State;
  /** a small filesystem holding /pip-freeze.txt, built beside the image */
  readonly freeze: State;
  /** the image config to export with (labels are added by the caller) */
  readonly config: OciImageConfig;
  /**
   * everything below the source layer (the dependencies and, with --separate-weights, the weights),
   * when the image is this plus one top layer holding /src; undefined when steps run after the source
   * copy (or a Dockerfile made the image)
   */
  readonly belowSource?: State;
}

/** A small filesystem holding /pip-freeze.txt: `command`'s output on `state`, built beside the image. */
export function freezeProbe(state: State, command: string): State {
  return state
    .run({
      shell: `(${command}) > /out/pip-freeze.txt`,
      mounts: [{ type: 'bind', dest: '/out', source: scratch() }],
      name: 'pip freeze',
    })
    .mount('/out');
}

/** An image config's Env (`NAME=VALUE` strings) as name/value pairs, in order; malformed entries skipped. */
export function configEnvEntries(env: readonly string[] | undefined): [string, string][] {
  return (env ?? []).flatMap((entry): [string, string][] => {
    const eq = entry.indexOf('=');
    return eq > 0 ? [[entry.slice(0, eq), entry.slice(eq + 1)]] : [];
  });
}

/** Expands $VAR and ${VAR} like a Dockerfile ENV does, from the variables set so far. */
export function expandEnv(value: string, env: ReadonlyMap<string, string>): string {
  return value.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, braced, bare) => {
    return env.get((braced ?? bare) as string) ?? '';
  });
}

function pinned(ref: string, digest: string | undefined): string {
  if (!digest || ref.includes('@')) return ref;
  return `${ref}@${digest}`;
}

function parentDirs(paths: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const path of paths) {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add(`/${parts.slice(0, i).join('/')}`);
  }
  return [...dirs].sort();
}

/**
 * The history entry of a layer the build adds, named after the step(s) that made it. Its `created` is
 * the --timestamp when given; without one BuildKit's exporter fills in when the layer was made.
 */
export function layerHistory(createdBy: string, sourceDateEpoch: number | undefined): HistoryEntry {
  return {
    ...(sourceDateEpoch !== undefined
      ? { created: new Date(sourceDateEpoch * 1000).toISOString().replace(/\.000Z$/, 'Z') }
      : {}),
    created_by: createdBy,
  };
}

/** `config` with history entries for `layers` more layers on top (named by the steps that made them). */
export function withLayerHistory(
  config: OciImageConfig,
  layers: readonly string[],
  sourceDateEpoch: number | undefined,
): OciImageConfig {
  return {
    ...config,
    history: [...(config.history ?? []), ...layers.map((name) => layerHistory(name, sourceDateEpoch))],
  };
}

/**
 * The base image's history with exactly one non-empty entry per layer of its rootfs (as BuildKit's
 * exporter counts them): entries a malformed base lacks are added, naming the base; extra ones are
 * marked empty from the top, as the exporter would.
 */
export function baseHistory(config: OciImageConfig, ref: string): HistoryEntry[] {
  const layers = config.rootfs?.diff_ids.length ?? 0;
  let seen = 0;
  const history = (config.history ?? []).map((entry) => {
    if (entry.empty_layer === true) return entry;
    seen++;
    return seen > layers ? { ...entry, empty_layer: true } : entry;
  });
  for (let i = seen; i < layers; i++) history.push({ created_by: `a layer of ${ref}` });
  return history;
}

function applyStep(
  state: State,
  step: PlanStep,
  env: Map<string, string>,
  sharedKeyHint: string,
  stepEnv: Readonly<Record<string, string>>,
): State {
  switch (step.kind) {
    case 'env': {
      let next = state;
      for (const [name, raw] of step.env) {
        const value = expandEnv(raw, env);
        env.set(name, value);
        next = next.withEnv(name, value);
      }
      return next;
    }
    case 'files': {
      let actions = new FileActions('/');
      for (const dir of parentDirs(step.files.map((f) => f.path)))
        actions = actions.mkdir(dir, { parents: true });
      for (const file of step.files)
        actions = actions.mkfile(file.path, file.content, { mode: file.mode ?? 0o644 });
      return state.file(actions, { name: step.name });
    }
    case 'context-files': {
      const source = local(step.context, {
        include: step.paths.map(withoutCommaSpace),
        sharedKeyHint: `${sharedKeyHint}:${step.context}`,
        name: `load ${step.context} files`,
      });
      let actions = new FileActions('/');
      for (const path of step.paths) {
        actions = actions.copy(source, `/${path}`, `${step.dest.replace(/\/?$/, '/')}${path}`, {
          createDestPath: true,
        });
      }
      return state.file(actions, { name: step.name });
    }
    case 'image-files': {
      const from = image(step.image);
      let actions = new FileActions('/');
      for (const path of step.paths) actions = actions.copy(from, path, step.dest, { createDestPath: true });
      return merge([state, scratch().file(actions, { name: step.name })]);
    }
    case 'run': {
      const mounts: Mount[] = [
        ...(step.cache ?? []).map((c): Mount => ({
          type: 'cache',
          dest: c.target,
          id: c.id ?? c.target,
          sharing: c.sharing,
        })),
        ...(step.secrets ?? []).map((s): Mount => ({
          type: 'secret',
          id: s.id,
          dest: s.target,
          // optional, as upstream's `RUN --mount=type=secret,id=ID,target=T`: without --secret the step
          // runs without the file (prepareBuild warns)
        })),
      ];
      // the secrets' content key is part of the step (so of its cache key), never of the image config
      const runEnv = step.secretsKey ? { ...stepEnv, [secretsKeyEnv]: step.secretsKey } : stepEnv;
      return state
        .run({
          shell: step.shell,
          mounts,
          name: step.name,
          ...(Object.keys(runEnv).length ? { env: runEnv } : {}),
        })
        .root();
    }
  }
}

/** File actions copying part of the project (the `context` transfer, filtered) to /src. */
function copyProjectToSrc(
  filter: { readonly include?: readonly string[]; readonly exclude: readonly string[] },
  sharedKeyHint: string,
  loadName: string,
): FileActions {
  const project = local('context', {
    ...(filter.include ? { include: filter.include.map(withoutCommaSpace) } : {}),
    exclude: filter.exclude.map(withoutCommaSpace),
    sharedKeyHint,
    name: loadName,
  });
  return new FileActions('/')
    .mkdir('/src', { parents: true })
    .copy(project, '/', '/src/', { contentsOnly: true, createDestPath: true });
}

/** An independent step, run from `from` beside the steps after it. */
interface Branch {
  readonly name: string;
  readonly from: State;
  readonly result: State;
  /** the names of the layers the build added up to `from` */
  readonly fromLayers: readonly string[];
}

/**
 * The layers (named by their steps) of `joinBranches`' result: each branch's layer moves down to
 * where its step stands, above the layers before it and below those built beside it. BuildKit keeps
 * those as they were: a diff whose upper state is built on its lower one is the layers between them
 * (cache.Diff), and the diff of a state with itself is none.
 */
function joinedLayers(layers: readonly string[], branches: readonly Branch[]): string[] {
  let joined = [...layers];
  for (const { name, fromLayers } of [...branches].reverse())
    joined = [...fromLayers, name, ...joined.slice(fromLayers.length)];
  return joined;
}

/**
 * `state` with each branch's layer put back where its step stands in the plan: a merge of the state
 * the branch started from, the branch's changes, and the changes of the steps built beside it.
 */
function joinBranches(state: State, branches: readonly Branch[]): State {
  let joined = state;
  for (const { name, from, result } of [...branches].reverse()) {
    const layers = [
      from,
      diff(from, result, { name: `[internal] the layer of ${name}` }),
      diff(from, joined, { name: `[internal] the layers built beside ${name}` }),
    ];
    joined = joined.withOutput(merge(layers, { name: `${name}: layer put back in place` }).output);
  }
  return joined;
}

export function compilePlan(plan: BuildPlan, options: CompileOptions): CompiledBuild {
  const platform = { OS: plan.platform.os, Architecture: plan.platform.architecture };
  const env = new Map(configEnvEntries(options.baseConfig.config?.Env));
  const sharedKeyHint = options.sharedKeyHint ?? 'cog';
  let state = image(pinned(plan.base, options.baseDigest), {
    config: options.baseConfig.config ?? {},
  }).withPlatform(platform);
  // independent steps run in branches from the state before them; each branch's layer is put back
  // in its place below the later steps' layers (a merge of diffs), so the image keeps upstream's order
  const branches: Branch[] = [];
  // the layers the plan adds, by the names of the steps that make them, in the image's order
  let added: string[] = [];
  // a step adds a layer when it gives a new filesystem (an env step, or one with no files, gives the same)
  const apply = (before: State, step: PlanStep): State => {
    const after = applyStep(before, step, env, sharedKeyHint, plan.stepEnv ?? {});
    if (after.output !== before.output) added = [...added, step.name];
    return after;
  };
  let settled: State | undefined;
  for (const step of plan.steps) {
    if (step.kind === 'run' && step.independent) {
      const result = applyStep(state, step, env, sharedKeyHint, plan.stepEnv ?? {});
      branches.push({ name: step.name, from: state, result, fromLayers: added });
      continue;
    }
    if (step.kind === 'run' && step.seesBranches) {
      added = joinedLayers(added, branches);
      state = joinBranches(state, branches.splice(0));
    }
    state = apply(state, step);
    if (step.kind === 'run' && step.packagesSettled) settled = state;
  }
  // the freeze probe reads what pip installed once the last install is done: it runs beside the steps
  // after it (ldconfig) and beside a branch still open (tini's apt step), off the critical path
  const freezeFrom = settled ?? state;
  added = joinedLayers(added, branches);
  state = joinBranches(state, branches.splice(0));

  // --separate-weights: the weights on scratch, merged under the source (like COPY --link): the layer
  // depends on nothing but the weight files, so its blob stays the same whatever else changes
  const layers: State[] = [state];
  if (plan.weights) {
    const copy = copyProjectToSrc(
      { include: weightIncludes(plan.weights), exclude: plan.weights.exclude },
      `${sharedKeyHint}:weights`,
      'load the weights',
    );
    layers.push(scratch().file(copy, { name: 'copy the weights to /src' }));
    added = [...added, 'copy the weights to /src'];
  }

  let sourceActions = copyProjectToSrc(
    { exclude: plan.source.exclude },
    `${sharedKeyHint}:context`,
    'load the project',
  );
  for (const dir of parentDirs(plan.source.files.map((f) => f.path)).filter((d) => d !== '/src'))
    sourceActions = sourceActions.mkdir(dir, { parents: true });
  for (const file of plan.source.files)
    sourceActions = sourceActions.mkfile(file.path, file.content, { mode: file.mode ?? 0o644 });
  const belowSource = layers.length === 1 ? state : merge(layers);
  state = merge([...layers, scratch().file(sourceActions, { name: 'copy the project to /src' })]);
  added = [...added, 'copy the project to /src'];
  state = state.withCwd('/src');
  for (const step of plan.afterSource) state = apply(state, step);

  const freeze = freezeProbe(freezeFrom, plan.freezeCommand);

  // the image's env: the base's, updated in place, new names appended (as Dockerfile ENV does)
  const finalEnv = [...env].map(([k, v]) => `${k}=${v}`);
  const exposed: Record<string, object> = {};
  for (const port of plan.image.exposedPorts) exposed[port] = {};
  const base = options.baseConfig;
  // the history is ours: one entry per layer, so BuildKit's exporter adds none of its own (it would
  // describe each layer by its cache record, which says "imported …" when the layer came from a cache)
  const history = [
    ...baseHistory(base, plan.base),
    ...added.map((name) => layerHistory(name, options.sourceDateEpoch)),
  ];
  const config: OciImageConfig = {
    ...base,
    history,
    architecture: plan.platform.architecture,
    os: plan.platform.os,
    config: {
      ...base.config,
      Env: finalEnv,
      Entrypoint: [...plan.image.entrypoint],
      Cmd: [...plan.image.cmd],
      WorkingDir: plan.image.workdir,
      ExposedPorts: { ...(base.config?.ExposedPorts ?? {}), ...exposed },
      Labels: { ...(base.config?.Labels ?? {}), ...plan.image.labels },
    },
  };
  return {
    image: state.withPlatform(platform),
    freeze,
    config,
    ...(plan.afterSource.length === 0 ? { belowSource: belowSource.withPlatform(platform) } : {}),
  };
}
