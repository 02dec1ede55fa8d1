/**
 * The user's own Dockerfile (hidden `--dockerfile`, as upstream): BuildKit's Dockerfile frontend builds
 * it, and this turns its result into a model image the way upstream does after such a build: the
 * OpenAPI schema in `.cog/` under the image's working directory, COG_MAX_CONCURRENCY when cog.yaml
 * sets a concurrency, cog's labels, and the pip freeze probe beside it. Beyond upstream, it also sets
 * the predictor's type stubs from cog.yaml, as a generated build does: without COG_PREDICT_TYPE_STUB
 * the current cog runtime refuses to start, so an image built from a plain Dockerfile would not run.
 * cog.yaml wins over the Dockerfile's ENV for these, so the image matches its run.cog.config label.
 */
import type { OciImageConfig } from '../buildkit/gateway.js';
import type { pb_Definition } from '../gen/types.js';
import { FileActions, State, definitionOutput } from '../llb/index.js';
import { type CompiledBuild, configEnvEntries, freezeProbe } from './compile.js';
import { freezeCommand } from './plan.js';

export interface DockerfileModel {
  /** labels known before the build (version, config, schema, revision…) */
  readonly labels: Readonly<Record<string, string>>;
  readonly openapiSchema?: string;
  readonly concurrencyMax?: number;
  /** cog.yaml's `run`/`predict` and `train` references */
  readonly predict?: string;
  readonly train?: string;
  readonly platform: { readonly os: string; readonly architecture: string };
}

/** The schema's path in an image whose working directory is `workdir` (coglet reads it from its cwd). */
export function schemaPathIn(workdir: string | undefined): string {
  const dir = workdir && workdir.startsWith('/') ? workdir.replace(/\/+$/, '') : '';
  return `${dir}/.cog/openapi_schema.json`;
}

/** `definition` and `config`: what the Dockerfile frontend built. */
export function compileOnDockerfile(
  definition: pb_Definition,
  config: OciImageConfig,
  model: DockerfileModel,
): CompiledBuild {
  const process = config.config ?? {};
  let state = new State(definitionOutput(definition)).withPlatform({
    OS: model.platform.os,
    Architecture: model.platform.architecture,
  });
  for (const [name, value] of configEnvEntries(process.Env)) state = state.withEnv(name, value);
  if (process.WorkingDir) state = state.withCwd(process.WorkingDir);
  if (process.User) state = state.withUser(process.User);

  const freeze = freezeProbe(state, freezeCommand);
  // in the config and in the state (a smoke test runs the server with the state's env)
  const settings: [string, string][] = [];
  if (model.predict) settings.push(['COG_PREDICT_TYPE_STUB', model.predict]);
  if (model.train) settings.push(['COG_TRAIN_TYPE_STUB', model.train]);
  if (model.concurrencyMax !== undefined && model.concurrencyMax > 0)
    settings.push(['COG_MAX_CONCURRENCY', String(model.concurrencyMax)]);
  for (const [name, value] of settings) state = state.withEnv(name, value);
  if (model.openapiSchema) {
    const path = schemaPathIn(process.WorkingDir);
    const actions = new FileActions('/')
      .mkdir(path.slice(0, path.lastIndexOf('/')), { parents: true })
      .mkfile(path, model.openapiSchema, { mode: 0o644 });
    state = state.file(actions, { name: 'add the OpenAPI schema' });
  }

  const env = (process.Env ?? []).filter((e) => !settings.some(([name]) => e.startsWith(`${name}=`)));
  env.push(...settings.map(([name, value]) => `${name}=${value}`));
  return {
    image: state,
    freeze,
    config: {
      ...config,
      config: { ...process, Env: env, Labels: { ...(process.Labels ?? {}), ...model.labels } },
    },
  };
}
