/**
 * `cog debug` (plan): what `cog build` would do for cog.yaml — the plan as readable steps, as JSON with
 * every input kept (for other builders), or the LLB Definition itself. Offline: the base image's own
 * config is not fetched, so the LLB's env holds only what cog adds.
 */
import { maskUrlCredentials } from '../registry/redact.js';
import { compilePlan } from '../plan/compile.js';
import { planBuild } from '../plan/plan.js';
import type { BuildPlan, PlanStep } from '../plan/types.js';
import { weightPaths } from '../plan/weights.js';
import { codec } from '../proto/schema.js';
import { withoutCogBase } from '../build/cog-base.js';
import { defaultBuildSettings, prepareBuild } from './prepare-build.js';
import type { CommandIo } from './debug-solve.js';

export interface DebugPlanArgs {
  readonly file: string;
  readonly format: 'text' | 'json' | 'llb';
  /** --use-cuda-base-image as `cog build` takes it: undefined is auto */
  readonly useCudaBaseImage?: string | undefined;
  /** --use-cog-base-image as `cog build` takes it: undefined is auto */
  readonly useCogBaseImage?: boolean | undefined;
  readonly separateWeights?: boolean;
}

function shorten(text: string, max = 100): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function describeStep(step: PlanStep): string {
  switch (step.kind) {
    case 'env':
      return `ENV   ${step.env.map(([k, v]) => `${k}=${shorten(v, 60)}`).join(' ')}`;
    case 'files':
      return `FILE  ${step.files.map((f) => `${f.path} (${f.content.length} bytes)`).join(', ')}`;
    case 'context-files':
      return `COPY  ${step.paths.join(' ')} from ${step.context} -> ${step.dest}`;
    case 'image-files':
      return `COPY  ${step.paths.join(' ')} from ${step.image} -> ${step.dest}   [parallel branch]`;
    case 'run': {
      const mounts = [
        ...(step.cache ?? []).map((c) => `cache ${c.target}`),
        ...(step.secrets ?? []).map((s) => `secret ${s.id} at ${s.target}`),
      ];
      if (step.independent) mounts.push('parallel branch');
      if (step.seesBranches) mounts.push('after the parallel branches');
      return `RUN   ${shorten(step.shell)}${mounts.length ? `   [${mounts.join(', ')}]` : ''}`;
    }
  }
}

/**
 * The source copy's line. cog always leaves out `.cog`, and the .dockerignore `cog init` writes lists it
 * too: each pattern is shown once, at its last place (the last pattern that matches a path decides, so
 * an earlier copy changes nothing), while the build keeps the list as it is.
 */
export function sourceLine(source: BuildPlan['source']): string {
  const exclude = source.exclude.filter((pattern, i) => !source.exclude.includes(pattern, i + 1));
  const files = source.files.length ? ` + ${source.files.map((f) => f.path).join(', ')}` : '';
  return `source  project -> /src (excluding ${exclude.join(', ')})${files}   [parallel branch, merged last]`;
}

export function formatPlan(plan: BuildPlan, options: { readonly schemaFromImage?: boolean } = {}): string {
  const lines = [`base  ${plan.base} (${plan.platform.os}/${plan.platform.architecture})`];
  for (const [index, step] of plan.steps.entries())
    lines.push(`${String(index + 1).padStart(2)}. ${step.name}\n    ${describeStep(step)}`);
  if (plan.weights) {
    const paths = weightPaths(plan.weights);
    lines.push(
      `weights ${paths.join(' ')} -> /src   [a layer of its own on scratch, merged below the source]`,
    );
  }
  lines.push(sourceLine(plan.source));
  for (const step of plan.afterSource) lines.push(`after source: ${step.name}\n    ${describeStep(step)}`);
  lines.push(
    `image  entrypoint ${JSON.stringify(plan.image.entrypoint)} cmd ${JSON.stringify(plan.image.cmd)}`,
  );
  lines.push(`       workdir ${plan.image.workdir}, exposes ${plan.image.exposedPorts.join(', ')}`);
  for (const [name, value] of Object.entries(plan.image.labels)) {
    // the build puts the cog SDK's version there, read with pip freeze (see build/freeze-labels.ts)
    const shown =
      name === 'run.cog.version'
        ? `(the installed cog SDK's version, read from the built image; else ${value})`
        : shorten(value, 80);
    lines.push(`label  ${name}=${shown}`);
  }
  lines.push('label  run.cog.pip_freeze=(read from the built image)');
  if (options.schemaFromImage)
    lines.push(
      'label  run.cog.openapi_schema=(read from the built image: `python -m cog.command.openapi_schema`, the cog SDK being below 0.17)',
    );
  return `${lines.join('\n')}\n`;
}

/** What a build does with the cog-base image, which only the daemon can resolve. */
function cogBaseLine(candidate: { image: string; required: boolean }): string {
  return candidate.required
    ? `cog-base  ${candidate.image} is required (a build fails when buildkitd cannot resolve it); the plan below is without it\n`
    : `cog-base  ${candidate.image} is tried first (a build uses it when buildkitd resolves it); the plan below is the fallback\n`;
}

export async function debugPlan(args: DebugPlanArgs, io: CommandIo, cwd = process.cwd()): Promise<void> {
  const prepared = await prepareBuild(
    {
      ...defaultBuildSettings,
      file: args.file,
      useCudaBaseImage: args.useCudaBaseImage,
      useCogBaseImage: args.useCogBaseImage,
      separateWeights: args.separateWeights === true,
    },
    io,
    cwd,
  );
  // offline: whether a cog-base image exists is the daemon's to say, so this shows the fallback base
  const input = withoutCogBase(prepared.input);
  const plan = planBuild(input);
  if (args.format === 'text') {
    const candidate = prepared.input.cogBase;
    const text = formatPlan(plan, { schemaFromImage: prepared.schemaFromImage });
    io.stdout.write(maskUrlCredentials(`${candidate ? cogBaseLine(candidate) : ''}${text}`));
    return;
  }
  const compiled = compilePlan(plan, { baseConfig: {} });
  // a fixed local-source id keeps the output reproducible (the real build's id only names the transfer)
  const marshalled = compiled.image.marshal({ localUniqueId: 'cog-debug' });
  if (args.format === 'llb') {
    io.stdout.write(codec('pb.Definition').encode(marshalled.definition));
    return;
  }
  const llb = marshalled.ops.map((o) => ({ digest: o.digest, kind: o.kind, op: o.op, metadata: o.metadata }));
  // credentials in the user's URLs (requirements' --extra-index-url, git+https) are masked, in the
  // files the plan writes too: the view is for reading and sharing, `--format llb` is what is built
  const shown = (v: unknown): unknown => {
    if (typeof v === 'string') return maskUrlCredentials(v);
    if (!(v instanceof Uint8Array)) return v;
    const text = Buffer.from(v).toString('utf8');
    const masked = maskUrlCredentials(text);
    return Buffer.from(masked === text ? v : Buffer.from(masked)).toString('base64');
  };
  io.stdout.write(
    `${JSON.stringify({ input, plan, imageConfig: compiled.config, llb }, (_k, v: unknown) => shown(v), 2)}\n`,
  );
}
