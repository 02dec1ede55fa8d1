/**
 * `cog predict` / `cog run` and `cog train`: run the model once without Docker. With IMAGE, the image is
 * resolved through buildkitd; without, the project is built (cached steps are reused) and run. Inputs
 * are parsed and validated against the model's schema before anything starts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSyncService } from '../buildkit/filesync.js';
import { gatewayBuild } from '../buildkit/gateway.js';
import { secretsService } from '../buildkit/secrets.js';
import type { TlsFlags } from '../buildkit/tls.js';
import { compileAgainstBase } from '../build/build-model.js';
import { isCogBaseProbe } from '../build/cog-base.js';
import { CogError } from '../errors.js';
import {
  format422,
  formatValidationErrors,
  parseInputFlags,
  parseJsonInput,
  validateInputs,
} from '../runtime/inputs.js';
import {
  checkOutputPath,
  errorText,
  failureMessage,
  planJsonMode,
  planOutputs,
  writeOutputs,
} from '../runtime/outputs.js';
import { localImages } from '../runtime/local-images.js';
import { gpuRequest, imageNeedsGpu, offeredDevices } from '../runtime/gpu.js';
import {
  forgetRunRecords,
  inputDirName,
  resolveModelImage,
  runFailure,
  runOnce,
  runStepName,
} from '../runtime/run-model.js';
import { watchingForReady } from '../runtime/ready-signal.js';
import { pointToShownOutput, serverOutputTail } from '../runtime/server-output.js';
import type { SmokeReport } from '../runtime/smoke.js';
import {
  checkImageArgument,
  checkBuildFlagsUnused,
  defaultBuildSettings,
  prepareBuild,
  projectSharedKey,
} from './prepare-build.js';
import { progressModeOf, showsWholeLog, withBuildkit } from './buildkit-command.js';
import type { CommandIo } from './debug-solve.js';
import { checkEntryPoint, checkImageEntryPoint } from './entry-point.js';

export interface PredictArgs {
  readonly image: string | undefined;
  readonly mode: 'predict' | 'train';
  readonly inputs: readonly string[];
  readonly json: string | undefined;
  readonly output: string | undefined;
  readonly env: readonly string[];
  readonly setupTimeout: number;
  readonly file: string;
  /** --secret for the project's build (build.run steps that mount one); not with IMAGE */
  readonly secrets?: readonly string[];
  readonly progress: string | undefined;
  readonly tls?: TlsFlags;
  /** `--gpus` (all, a count, device=0,1, none); default: all when the model has build.gpu */
  readonly gpus?: string | undefined;
  /** `--use-replicate-token`: send $REPLICATE_API_TOKEN as the request's context.replicate_api_token */
  readonly useReplicateToken?: boolean;
  /** --use-cuda-base-image for the project's build, as `cog build` takes it; undefined is auto */
  readonly useCudaBaseImage?: string | undefined;
  /** --use-cog-base-image for the project's build, as `cog build` takes it; undefined is auto */
  readonly useCogBaseImage?: boolean | undefined;
}

/** The session secret that carries $REPLICATE_API_TOKEN to the run. */
const replicateTokenSecret = 'cog-replicate-api-token';

type OpenApiDoc = Parameters<typeof parseInputFlags>[1];

/**
 * `-e` values as docker run reads them: `NAME=VALUE` sets NAME; a bare `NAME` passes this shell's value of
 * NAME, and nothing when the shell has none.
 */
export function parseEnv(values: readonly string[], hostEnv: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq === 0 || value === '')
      throw new CogError(`-e "${value}" has no variable name`, {
        hint: 'e.g. -e HF_TOKEN=... or -e HF_TOKEN',
      });
    if (eq > 0) {
      env[value.slice(0, eq)] = value.slice(eq + 1);
      continue;
    }
    const here = hostEnv[value];
    if (here !== undefined) env[value] = here;
  }
  return env;
}

async function inputsFor(args: PredictArgs, schema: OpenApiDoc | undefined, io: CommandIo, cwd: string) {
  if (args.json !== undefined && args.inputs.length > 0) {
    throw new CogError('--json and -i cannot be combined', { hint: 'put every input in the --json object' });
  }
  const input =
    args.json !== undefined
      ? await parseJsonInput(args.json, { cwd, stdin: io.stdin })
      : await parseInputFlags([...args.inputs], schema, { cwd, mode: args.mode });
  if (schema) {
    const problems = validateInputs(input, schema, args.mode, { fromText: args.json === undefined });
    if (problems.length > 0)
      throw new CogError(formatValidationErrors(problems), { hint: 'fix the inputs; nothing was started' });
  }
  return input;
}

export async function predict(args: PredictArgs, io: CommandIo, cwd = process.cwd()): Promise<void> {
  checkImageArgument(args.image, 'did you forget -i? e.g. cog run -i name=value');
  if (!Number.isFinite(args.setupTimeout) || args.setupTimeout <= 0)
    throw new CogError('--setup-timeout needs a positive number of seconds', {
      hint: 'e.g. --setup-timeout 600 (the default is 300)',
    });
  const env = parseEnv(args.env, io.env);
  // a mistyped -o fails now, not after the build and the run
  const outputPath = args.output ? await checkOutputPath(args.output, cwd) : undefined;
  if (args.useReplicateToken && !io.env.REPLICATE_API_TOKEN)
    throw new CogError('--use-replicate-token needs the REPLICATE_API_TOKEN environment variable', {
      hint: 'export REPLICATE_API_TOKEN=r8_… (an API token from replicate.com/account/api-tokens)',
    });
  const baseFlags = { useCudaBaseImage: args.useCudaBaseImage, useCogBaseImage: args.useCogBaseImage };
  if (args.image !== undefined) {
    const command = args.mode === 'train' ? 'cog train' : 'cog run';
    checkBuildFlagsUnused({ ...baseFlags, secrets: args.secrets, file: args.file }, command);
  }
  // without IMAGE: the project's config and schema are known before connecting, so inputs fail fast
  const prepared =
    args.image === undefined
      ? await prepareBuild(
          { ...defaultBuildSettings, ...baseFlags, file: args.file, secrets: args.secrets ?? [] },
          io,
          cwd,
        )
      : undefined;
  let input: Record<string, unknown> | undefined;
  if (prepared) {
    checkEntryPoint(args.mode, prepared.loaded.completed);
    const schema = prepared.input.openapiSchema
      ? (JSON.parse(prepared.input.openapiSchema) as OpenApiDoc)
      : undefined;
    input = await inputsFor(args, schema, io, cwd);
  }

  // IMAGE comes from the local image store when it is there, else from its registry
  const images = args.image === undefined ? undefined : localImages(io.env);
  // the image's blobs stay in the store while it runs, even if its name moves to another image
  const lease = await images?.store.lease({ ifExists: true });
  const inputDir = await mkdtemp(join(tmpdir(), 'cog-input-'));
  const dirs: Record<string, string> = { [inputDirName]: inputDir };
  if (prepared) dirs.context = prepared.loaded.projectDir;
  let report: SmokeReport | undefined;
  let schemaForOutputs: unknown;
  /** the run's progress view: quiet unless asked (the prediction's output is what the user reads) */
  const progress = { progress: args.progress, defaultProgress: 'quiet' };
  // the model's setup() has finished (its server said READY): Ctrl-C from then on cancels the prediction
  let ready = false;
  // --secret for the build's steps, and the token, which reaches the run as a secret mount: never in
  // the LLB, its cache keys or a layer
  const sessionSecrets = {
    ...prepared?.secrets,
    ...(args.useReplicateToken ? { [replicateTokenSecret]: { env: 'REPLICATE_API_TOKEN' } } : {}),
  };
  try {
    await withBuildkit(
      io,
      {
        ...progress,
        tls: args.tls,
        services: [
          fileSyncService(dirs),
          ...(images ? [images.service] : []),
          ...(Object.keys(sessionSecrets).length > 0 ? [secretsService(sessionSecrets, io.env)] : []),
        ],
        hideSteps: isCogBaseProbe,
        // the project's build takes --secret: a step's missing secret is explained with the flag
        secretFlag: prepared !== undefined,
        // what Ctrl-C cancels: the project's build (which runs the model too) or, IMAGE being run, not
        // built, the model's setup; either way, once the model is READY, the prediction
        onInterruptDoing: () =>
          ready
            ? `cancelling the ${args.mode === 'train' ? 'training' : 'prediction'}`
            : args.image !== undefined
              ? "cancelling the model's setup"
              : 'cancelling the build',
      },
      async ({ client, session, ref, signal, onStatus: show }) => {
        const watchReady = watchingForReady(runStepName(args.mode), () => (ready = true));
        const onStatus: typeof show = (status) => show(watchReady(status));
        // the worker's devices are only asked for when a GPU is wanted (one round trip less otherwise)
        const devicesFor = async (needsGpu: boolean) =>
          needsGpu || args.gpus !== undefined
            ? offeredDevices((await client.listWorkers(signal)).record ?? [])
            : [];
        // the device entitlement must be on the solve: known up front for the project, or from --gpus
        const projectNeedsGpu = prepared?.loaded.completed.gpu === true;
        const upfront =
          prepared || args.gpus !== undefined
            ? gpuRequest(projectNeedsGpu, args.gpus, await devicesFor(projectNeedsGpu))
            : undefined;
        const entitlements = upfront?.needsEntitlement ? ['device'] : [];
        try {
          return await gatewayBuild(client, { session, ref, signal, onStatus, entitlements }, async (gw) => {
            let model;
            /** the image's labels, in IMAGE mode */
            let resolvedLabels: Record<string, string> | undefined;
            if (prepared) {
              const sharedKey = projectSharedKey(prepared.loaded.projectDir);
              model = (
                await compileAgainstBase(gw, prepared.input, sharedKey, (message) =>
                  io.stderr.write(`cog: warning: ${message}\n`),
                )
              ).compiled.image;
              schemaForOutputs = prepared.input.openapiSchema
                ? JSON.parse(prepared.input.openapiSchema)
                : undefined;
            } else {
              const resolved = await resolveModelImage(gw, args.image as string, {
                ...(images ? { local: { ...images, sessionId: session.id } } : {}),
              });
              model = resolved.state;
              resolvedLabels = resolved.config.config?.Labels;
              schemaForOutputs = resolved.schema;
              // a trainer the image was built without fails now, not after its container started
              checkImageEntryPoint(args.mode, args.image as string, resolved.schema);
              input = await inputsFor(args, resolved.schema as OpenApiDoc | undefined, io, cwd);
            }
            const imageGpu = imageNeedsGpu(resolvedLabels);
            const gpus = upfront ?? gpuRequest(imageGpu, args.gpus, await devicesFor(imageGpu));
            if (gpus.needsEntitlement && !entitlements.includes('device')) {
              throw new CogError(
                `${args.image} needs a GPU, and the worker's GPU device is not auto-allowed`,
                {
                  hint: 'pass --gpus all (the solve then asks for the device entitlement, which buildkitd must allow)',
                },
              );
            }
            await writeFile(join(inputDir, 'request.json'), JSON.stringify(input ?? {}));
            const run = await runOnce(gw, model, {
              mode: args.mode,
              setupTimeout: args.setupTimeout,
              env,
              devices: gpus.devices,
              ...(args.useReplicateToken ? { replicateTokenSecret } : {}),
              announceReady: true,
            });
            report = run.report;
            return { ref: run.ref };
          });
        } finally {
          // the run's inputs and outputs leave buildkitd's cache with it (an interrupted run's go with the next)
          if (!signal.aborted)
            await forgetRunRecords(client, signal).catch((err: unknown) => {
              io.stderr.write(
                `cog: warning: the run's inputs and outputs stay in buildkitd's cache: ${(err as Error).message}\n`,
              );
            });
        }
      },
    );
  } finally {
    await lease?.release();
    await rm(inputDir, { recursive: true, force: true });
  }

  if (!report) throw new CogError('the model did not run');
  const logShown = showsWholeLog(progressModeOf(io, progress));
  const failure = runFailure(report, args.setupTimeout);
  if (failure) throw pointToShownOutput(failure, logShown);
  const answer = report.prediction as { status?: string; error?: unknown; output?: unknown };
  if (answer.status === 'http 422') throw new CogError(format422(answer.error), { hint: 'fix the inputs' });
  if (answer.status?.startsWith('http ')) {
    throw new CogError(
      `/${args.mode === 'train' ? 'trainings' : 'predictions'} call returned status ${answer.status.slice(5)}`,
      {
        hint: errorText(answer.error),
      },
    );
  }
  const written = {
    cwd,
    onNote: (line: string) => io.stderr.write(`${line}\n`),
    makeDirectory: outputPath?.replace(/^@/, '').endsWith('/') === true,
  };
  if (args.json !== undefined) {
    const result = planJsonMode(answer as never, schemaForOutputs as never, {
      mode: args.mode,
      ...(outputPath ? { outputPath } : {}),
    });
    const printed = await writeOutputs(result.actions, written);
    if (printed) io.stdout.write(printed);
    if (result.exitCode !== 0)
      throw new CogError(failureMessage({ status: answer.status ?? 'unknown', error: answer.error }), {
        exitCode: result.exitCode,
      });
    return;
  }
  let planned: ReturnType<typeof planOutputs>;
  try {
    planned = planOutputs(answer as never, schemaForOutputs as never, {
      mode: args.mode,
      ...(outputPath ? { outputPath } : {}),
      failureDetail: serverOutputTail(report),
    });
  } catch (err) {
    throw pointToShownOutput(err, logShown);
  }
  // "Written output to: …" and "No output generated" go to stderr, as upstream says them
  const printed = await writeOutputs(planned, written);
  if (printed) io.stdout.write(printed.endsWith('\n') ? printed : `${printed}\n`);
}
