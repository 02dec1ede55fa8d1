/**
 * One `cog build` on BuildKit, as a gateway build: resolve the base image through the daemon, plan and
 * compile, solve the image and a pip-freeze probe side by side, read the probe, and return the image
 * with its config and labels for the exporters. One Control.Solve; nothing is built twice.
 */
import type { BuildkitClient } from '../buildkit/client.js';
import {
  type Gateway,
  type GatewayResult,
  type ImageConfigResult,
  type OciImageConfig,
  gatewayBuild,
} from '../buildkit/gateway.js';
import type { Session } from '../buildkit/session.js';
import type { SolveOptions } from '../buildkit/solve.js';
import { image, normalizeImageRef } from '../llb/index.js';
import { withLayerHistory } from '../plan/compile.js';
import { compileOnDockerfile } from '../plan/compile-dockerfile.js';
import { distroPython } from '../plan/distro.js';
import type { PlanInput } from '../plan/types.js';
import { notReadyDetail, serverOutputTail, wholeOutputHint } from '../runtime/server-output.js';
import { type SmokeOptions, type SmokeReport, smokeTest } from '../runtime/smoke.js';
import { CogError } from '../errors.js';
import { freezeLabels } from './freeze-labels.js';
import {
  bundledSchemaStep,
  legacySchemaProbe,
  readLegacySchema,
  withBundledSchema,
} from './legacy-schema.js';
import { type ResolvedBase, compileOnBase } from './resolved-base.js';
import { belowSourceKey } from './source-image.js';
import {
  cogBaseFallbackWarning,
  cogBaseLabels,
  cogBaseProbeName,
  cogBaseUnavailable,
  fallbackProbeName,
  onCogBase,
  withoutCogBase,
} from './cog-base.js';

export interface BuildModelOptions {
  readonly input: PlanInput;
  readonly session: Session;
  readonly exporters: SolveOptions['exporters'];
  readonly cacheExports?: SolveOptions['cacheExports'];
  readonly cacheImports?: SolveOptions['cacheImports'];
  /** e.g. no-cache, source-date-epoch */
  readonly frontendAttrs?: Readonly<Record<string, string>>;
  /** a stable key for the project, so context transfers are incremental */
  readonly sharedKeyHint: string;
  readonly signal?: AbortSignal;
  readonly onStatus?: SolveOptions['onStatus'];
  readonly ref?: string;
  /** re-run every step */
  readonly noCache?: boolean;
  /** start the server in the built image and require READY (and a successful prediction) before export */
  readonly smoke?: SmokeOptions;
  /** warnings found during the build (a cog-base fallback) */
  readonly warn: (message: string) => void;
  /**
   * hidden --dockerfile: the user's Dockerfile (the session serves its directory as `dockerfile`),
   * built by BuildKit's Dockerfile frontend instead of the plan
   */
  readonly dockerfile?: { readonly filename: string };
  /**
   * read the OpenAPI schema from the built image (an SDK below 0.17, legacy-schema.ts): label the image
   * with it and write it at /src/.cog, where static schemas go; never set with `dockerfile`
   * (prepare-build.ts decides)
   */
  readonly schemaFromImage?: boolean;
  /**
   * the platforms to build (default: the input's): more than one makes a multi-platform image, an
   * index of one image per platform
   */
  readonly platforms?: readonly NonNullable<PlanInput['platform']>[];
}

export interface BuiltModel {
  /** the build's id */
  readonly ref: string;
  /** one per platform, in the order asked */
  readonly images: readonly BuiltImage[];
  readonly exporterResponse: Record<string, string>;
}

const majorMinor = (version: string) => version.split('.').slice(0, 2).join('.');

async function osRelease(gw: Gateway, ref: string): Promise<string> {
  const id = await gw.solve(image(ref).marshal().definition);
  for (const path of ['/etc/os-release', '/usr/lib/os-release']) {
    if (await gw.exists(id, path)) return (await gw.readFile(id, path)).toString('utf8');
  }
  return '';
}

const reason = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * The base to build on and the plan input for it. A cog-base candidate is resolved first: when
 * required, its failure fails the build; in auto mode the fallback base is resolved at the same time
 * (so falling back costs no extra round trip) and a failure is one warning.
 */
export async function chooseBase(
  gw: Gateway,
  input: PlanInput,
  warn: (message: string) => void,
): Promise<{ input: PlanInput; base: ImageConfigResult }> {
  const platform = input.platform ?? { os: 'linux', architecture: 'amd64' };
  const resolve = (ref: string, logName?: string) =>
    gw.resolveImageConfig(normalizeImageRef(ref), {
      platform: { OS: platform.os, Architecture: platform.architecture },
      ...(logName ? { logName } : {}),
    });
  const candidate = input.cogBase;
  if (!candidate) return { input, base: await resolve(input.baseImage) };
  const onCandidate = async (logName?: string) => {
    const base = await resolve(candidate.image, logName);
    return { input: onCogBase(input, candidate.image, cogBaseLabels(candidate.image, base.config)), base };
  };
  if (candidate.required) {
    try {
      return await onCandidate();
    } catch (err) {
      throw cogBaseUnavailable(candidate.image, reason(err));
    }
  }
  const fallback = resolve(input.baseImage, fallbackProbeName(input.baseImage));
  fallback.catch(() => undefined); // awaited below when needed; unused when the cog-base image resolves
  try {
    return await onCandidate(cogBaseProbeName(candidate.image));
  } catch (err) {
    warn(cogBaseFallbackWarning(candidate.image, reason(err), input.baseImage));
    return { input: withoutCogBase(input), base: await fallback };
  }
}

/**
 * Plans against the resolved base image and compiles the graph; shared by build and predict. `warn`
 * gets the one warning of a cog-base fallback.
 */
export async function compileAgainstBase(
  gw: Gateway,
  requested: PlanInput,
  sharedKeyHint: string,
  warn: (message: string) => void,
) {
  const chosen = await chooseBase(gw, requested, warn);
  const { input } = chosen;
  let cudaPython: PlanInput['cudaPython'] = input.cudaPython;
  if (input.baseKind === 'cuda' && cudaPython === undefined) {
    const pinned = `${normalizeImageRef(input.baseImage)}@${chosen.base.digest}`;
    cudaPython =
      distroPython(await osRelease(gw, pinned)) === majorMinor(input.pythonVersion) ? 'distro' : 'uv';
  }
  const base: ResolvedBase = {
    image: input.baseImage,
    digest: chosen.base.digest,
    config: chosen.base.config,
    onCogBase: input.baseKind === 'cog-base',
    ...(cudaPython ? { cudaPython } : {}),
  };
  return { ...compileOnBase(input, base, sharedKeyHint), base };
}

/** The frontend's options for the user's Dockerfile; the context is the project, as upstream. */
export function dockerfileFrontendOptions(
  filename: string,
  input: Pick<PlanInput, 'platform' | 'sourceDateEpoch'>,
  noCache: boolean,
): Record<string, string> {
  const platform = input.platform ?? { os: 'linux', architecture: 'amd64' };
  return {
    filename,
    platform: `${platform.os}/${platform.architecture}`,
    ...(noCache ? { 'no-cache': '' } : {}),
    ...(input.sourceDateEpoch !== undefined
      ? { 'build-arg:SOURCE_DATE_EPOCH': String(input.sourceDateEpoch) }
      : {}),
  };
}

/** Builds the user's Dockerfile with BuildKit's frontend, then compiles the model image on top of it. */
async function compileDockerfile(gw: Gateway, input: PlanInput, filename: string, noCache: boolean) {
  const built = await gw.solveFrontend('dockerfile.v0', dockerfileFrontendOptions(filename, input, noCache));
  const configBytes = built.metadata['containerimage.config'];
  if (!configBytes)
    throw new CogError(`${filename}: the Dockerfile frontend returned no image config`, {
      hint: 'the Dockerfile’s last stage must be an image (FROM …)',
    });
  const config = JSON.parse(configBytes.toString('utf8')) as OciImageConfig;
  return compileOnDockerfile(built.definition, config, {
    labels: input.labels,
    ...(input.openapiSchema ? { openapiSchema: input.openapiSchema } : {}),
    ...(input.concurrencyMax !== undefined ? { concurrencyMax: input.concurrencyMax } : {}),
    ...(input.predict ? { predict: input.predict } : {}),
    ...(input.train ? { train: input.train } : {}),
    platform: input.platform ?? { os: 'linux', architecture: 'amd64' },
  });
}

type Platform = NonNullable<PlanInput['platform']>;

/** A platform's id in a multi-platform result, e.g. linux/arm64. */
export const platformId = (p: Platform) => `${p.os}/${p.architecture}`;

/** One platform's image of a build. */
export interface BuiltImage {
  readonly platform: Platform;
  /** the gateway ref of its filesystem */
  readonly ref: string;
  readonly config: OciImageConfig;
  readonly smoke?: SmokeReport;
  /**
   * the key of everything below the image's source layer and the base it was planned on, when the
   * source is the top layer and nothing below it reads client files (see build/source-image.ts)
   */
  readonly below?: { readonly key: string; readonly base: ResolvedBase };
}

/**
 * What the build function returns for the images: one ref with its config, or for several platforms
 * one ref per platform id with `refs.platforms` and a config per id, which the exporters make an index.
 */
export function gatewayResultFor(images: readonly BuiltImage[]): GatewayResult {
  const [only] = images;
  if (images.length === 1 && only)
    return { ref: only.ref, metadata: { 'containerimage.config': JSON.stringify(only.config) } };
  const platforms = images.map((i) => ({
    ID: platformId(i.platform),
    Platform: { os: i.platform.os, architecture: i.platform.architecture },
  }));
  return {
    refs: Object.fromEntries(images.map((i) => [platformId(i.platform), i.ref])),
    metadata: {
      'refs.platforms': JSON.stringify({ Platforms: platforms }),
      ...Object.fromEntries(
        images.map((i) => [`containerimage.config/${platformId(i.platform)}`, JSON.stringify(i.config)]),
      ),
    },
  };
}

/**
 * The requested platforms the daemon's workers cannot run (every build has RUN steps, which need the
 * worker's CPU or an emulator). Nothing is refused when the daemon did not say what it runs.
 */
export function platformsNotRun(requested: readonly Platform[], workers: readonly string[]): Platform[] {
  if (workers.length === 0) return [];
  const run = new Set(workers.map((w) => w.split('/').slice(0, 2).join('/')));
  return requested.filter((p) => !run.has(platformId(p)));
}

/** Compiles, solves and (when asked) smoke-tests the image of one platform. */
async function buildPlatform(gw: Gateway, input: PlanInput, options: BuildModelOptions): Promise<BuiltImage> {
  const planned = options.dockerfile
    ? undefined
    : await compileAgainstBase(gw, input, options.sharedKeyHint, options.warn);
  const compiled =
    planned?.compiled ??
    (await compileDockerfile(
      gw,
      input,
      options.dockerfile?.filename ?? 'Dockerfile',
      options.noCache === true,
    ));
  const platform = {
    OS: compiled.config.os ?? 'linux',
    Architecture: compiled.config.architecture ?? 'amd64',
  };
  const marshal = { platform, ...(options.noCache ? { ignoreCache: true } : {}) };
  // both evaluated now, side by side: an image solved lazily would build its branches no freeze
  // depends on (tini's apt step) only during the export, after the freeze
  const [imageId, freezeId] = await Promise.all([
    gw.solve(compiled.image.marshal(marshal).definition, { evaluate: true }),
    gw.solve(compiled.freeze.marshal(marshal).definition, { evaluate: true }),
  ]);
  const pipFreeze = (await gw.readFile(freezeId, '/pip-freeze.txt')).toString('utf8').trim();
  let model = compiled.image;
  let ref = imageId;
  let compiledConfig = compiled.config;
  const schemaLabel: Record<string, string> = {};
  if (options.schemaFromImage) {
    const probeId = await gw.solve(legacySchemaProbe(model).marshal(marshal).definition, { evaluate: true });
    const schema = await readLegacySchema(gw, probeId);
    schemaLabel['run.cog.openapi_schema'] = schema;
    model = withBundledSchema(model, schema);
    // one file op, one layer: its history entry
    compiledConfig = withLayerHistory(compiledConfig, [bundledSchemaStep], input.sourceDateEpoch);
    ref = await gw.solve(model.marshal(marshal).definition, { evaluate: true });
  }
  const config: OciImageConfig = {
    ...compiledConfig,
    config: {
      ...compiledConfig.config,
      Labels: { ...(compiledConfig.config?.Labels ?? {}), ...freezeLabels(pipFreeze), ...schemaLabel },
    },
  };
  let smoke: SmokeReport | undefined;
  if (options.smoke) {
    // a Dockerfile's image starts where its WORKDIR says, as under `docker run`
    const workdir = options.dockerfile ? compiled.config.config?.WorkingDir || '/' : undefined;
    const smokeOptions = workdir ? { ...options.smoke, cwd: workdir } : options.smoke;
    const probeId = await gw.solve(smokeTest(model, smokeOptions).marshal(marshal).definition, {
      evaluate: true,
    });
    smoke = JSON.parse((await gw.readFile(probeId, '/smoke.json')).toString('utf8')) as SmokeReport;
    checkSmoke(smoke, options.smoke.input !== undefined);
  }
  const built = input.platform ?? { os: 'linux', architecture: 'amd64' };
  // the image's top layer is the source's only when no schema layer went on top of it
  const belowSource =
    !options.schemaFromImage &&
    planned?.compiled.belowSource &&
    belowSourceKey(planned.compiled.belowSource, platform);
  return {
    platform: built,
    ref,
    config,
    ...(smoke ? { smoke } : {}),
    ...(planned && belowSource ? { below: { key: belowSource, base: planned.base } } : {}),
  };
}

export async function buildModel(client: BuildkitClient, options: BuildModelOptions): Promise<BuiltModel> {
  let images: BuiltImage[] = [];
  const platforms = options.platforms ?? [options.input.platform ?? { os: 'linux', architecture: 'amd64' }];
  // the same warning (a cog-base fallback) from each platform's build is said once
  const said = new Set<string>();
  const warn = (message: string) => {
    if (said.has(message)) return;
    said.add(message);
    options.warn(message);
  };
  const result = await gatewayBuild(
    client,
    {
      session: options.session,
      ...(options.ref ? { ref: options.ref } : {}),
      ...(options.exporters ? { exporters: options.exporters } : {}),
      ...(options.cacheExports ? { cacheExports: options.cacheExports } : {}),
      ...(options.cacheImports ? { cacheImports: options.cacheImports } : {}),
      // the platforms asked for, which BuildKit checks the result's against (without them it assumes
      // its worker's default, and warns "Requested platform linux/amd64 does not match" for arm64)
      frontendAttrs: { ...(options.frontendAttrs ?? {}), platform: platforms.map(platformId).join(',') },
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onStatus ? { onStatus: options.onStatus } : {}),
    },
    async (gw) => {
      const missing = platformsNotRun(platforms, gw.workerPlatforms);
      if (missing.length > 0) {
        const ids = missing.map(platformId).join(' and ');
        throw new CogError(
          `buildkitd cannot run ${ids} builds: its workers run ${[...new Set(gw.workerPlatforms)].join(', ')}`,
          {
            hint: `register QEMU emulation on the daemon's host (binfmt_misc, e.g. qemu-aarch64), use a buildkitd on ${ids}, or leave ${ids} out of --platform`,
          },
        );
      }
      // the platforms build side by side: BuildKit shares what their graphs have in common
      images = await Promise.all(
        platforms.map((platform) => buildPlatform(gw, { ...options.input, platform }, { ...options, warn })),
      );
      return gatewayResultFor(images);
    },
  );
  if (images.length === 0) throw new Error('the build returned without an image');
  return { ref: result.ref, images, exporterResponse: result.exporterResponse };
}

/** Fails the build unless the server became READY (and the prediction, when asked, succeeded). */
export function checkSmoke(report: SmokeReport, predicted: boolean): void {
  const status = report.health?.status;
  if (status !== 'READY') {
    throw new CogError(
      `smoke test: the model server did not become READY (${report.error ?? `status ${status ?? 'unknown'}`})${notReadyDetail(report)}`,
      { hint: wholeOutputHint },
    );
  }
  if (predicted && report.prediction?.status !== 'succeeded') {
    throw new CogError(
      `smoke test: the prediction did not succeed (${report.prediction?.status ?? 'no answer'})${serverOutputTail(report)}`,
      {
        hint: JSON.stringify(report.prediction?.error ?? report.prediction ?? null),
      },
    );
  }
}
