/**
 * The model's environment as a BuildKit gateway container, shared by `cog serve` and `cog exec`: the
 * project is built (cached steps are reused) or IMAGE is resolved, a container is created on the
 * daemon with the host's network, the caller runs its processes in it, and the container and the
 * build are released whatever happens. Ctrl-C while building cancels the build; once the container
 * runs, the caller's `onInterrupt` decides (e.g. stop the server gracefully).
 *
 * The project: upstream bind-mounts the directory at /src. A daemon may be remote, so here /src is
 * the image's copy of the project, sent over the session when the command starts (with the generated
 * .cog/openapi_schema.json, which a mount of the bare directory would hide). Edits made afterwards
 * need a restart, and files the command writes under /src stay in the container.
 */
import { dirname, resolve } from 'node:path';
import { fileSyncService } from '../buildkit/filesync.js';
import { type OciImageConfig, gatewayBuild } from '../buildkit/gateway.js';
import type { TlsFlags } from '../buildkit/tls.js';
import { compileAgainstBase } from '../build/build-model.js';
import { isCogBaseProbe } from '../build/cog-base.js';
import { GatewayContainer } from '../runtime/container.js';
import { localImages } from '../runtime/local-images.js';
import { imageNeedsGpu } from '../runtime/gpu.js';
import { resolveModelImage } from '../runtime/run-model.js';
import { configEnvEntries } from '../plan/compile.js';
import { wheelContext } from '../plan/plan.js';
import { CogError } from '../errors.js';
import {
  checkBuildFlagsUnused,
  defaultBuildSettings,
  prepareBuild,
  projectSharedKey,
} from './prepare-build.js';
import { secretsService } from '../buildkit/secrets.js';
import { withBuildkit } from './buildkit-command.js';
import type { CommandIo } from './debug-solve.js';
import { checkEntryPoint } from './entry-point.js';

export interface ModelContainerOptions {
  /** run this image instead of building the project */
  readonly image: string | undefined;
  /** cog.yaml */
  readonly file: string;
  /** --secret for the project's build (build.run steps that mount one); not with IMAGE */
  readonly secrets?: readonly string[];
  readonly progress: string | undefined;
  readonly tls?: TlsFlags | undefined;
  /** a predictor the schema cannot be read from: warn and go on (cog exec, a debugging tool) */
  readonly schemaFailure?: 'fail' | 'warn';
  /** --use-cuda-base-image for the project's build, as `cog build` takes it; undefined is auto */
  readonly useCudaBaseImage?: string | undefined;
  /** --use-cog-base-image for the project's build, as `cog build` takes it; undefined is auto */
  readonly useCogBaseImage?: boolean | undefined;
  /** --gpus (upstream's serve takes it): only `none`, as these containers cannot have devices */
  readonly gpus?: string | undefined;
  /** the command, for errors: `cog serve` */
  readonly command: string;
  /** the command serves the predictor: a project whose cog.yaml names none fails before the build */
  readonly servesPredictor?: boolean;
}

export interface ModelContainer {
  readonly container: GatewayContainer;
  /** the image config: Env, Entrypoint, WorkingDir, User */
  readonly config: NonNullable<OciImageConfig['config']>;
  /** the working directory processes start in */
  readonly cwd: string;
  /**
   * Sets what the first Ctrl-C (or SIGTERM) does from now on, instead of cancelling the build: the
   * handler gets the signal cog received; `doing` says what it does, for the message (default:
   * stopping the model). A second one always exits at once (the daemon then drops the build and its
   * container).
   */
  onInterrupt(handler: (signal: NodeJS.Signals) => void, doing?: string): void;
}

/** How long a graceful stop may take before the build is cancelled under the process. */
const stopGraceMs = 15_000;

export async function withModelContainer<T>(
  io: CommandIo,
  options: ModelContainerOptions,
  cwd: string,
  run: (model: ModelContainer) => Promise<T>,
): Promise<T> {
  // BuildKit's gateway containers (NewContainerRequest, v0.32) have no CDI devices field
  if (options.gpus !== undefined && options.gpus !== 'none')
    throw new CogError(`--gpus ${options.gpus}: ${options.command} cannot attach GPUs`, {
      hint: `BuildKit gives GPUs to build steps, not to the containers ${options.command} runs: \`cog run --gpus ${options.gpus}\` runs a prediction on them`,
    });
  const baseFlags = { useCudaBaseImage: options.useCudaBaseImage, useCogBaseImage: options.useCogBaseImage };
  if (options.image !== undefined) {
    checkBuildFlagsUnused({ ...baseFlags, secrets: options.secrets, file: options.file }, options.command);
  }
  const prepared =
    options.image === undefined
      ? await prepareBuild(
          {
            ...defaultBuildSettings,
            ...baseFlags,
            file: options.file,
            secrets: options.secrets ?? [],
            schemaFailure: options.schemaFailure ?? 'fail',
          },
          io,
          cwd,
        )
      : undefined;
  if (prepared && options.servesPredictor)
    checkEntryPoint('predict', prepared.loaded.completed, options.command);
  const dirs: Record<string, string> = {};
  if (prepared) {
    const { loaded, input } = prepared;
    dirs.context = loaded.projectDir;
    if (input.sdk.kind === 'file') dirs[wheelContext('cog')] = dirname(resolve(cwd, input.sdk.path));
    if (input.coglet?.kind === 'file')
      dirs[wheelContext('coglet')] = dirname(resolve(cwd, input.coglet.path));
    io.stderr.write(`cog: building ${loaded.projectDir} (--progress plain shows the steps)\n`);
  }
  const sharedKey = prepared ? projectSharedKey(prepared.loaded.projectDir) : undefined;
  // IMAGE comes from the local image store when it is there, else from its registry
  const images = options.image === undefined ? undefined : localImages(io.env);
  // the image's blobs stay in the store while it runs, even if its name moves to another image
  const lease = await images?.store.lease({ ifExists: true });

  let result: { value: T } | undefined;
  /** set once the container runs: what the first Ctrl-C does instead of cancelling the build */
  let interruptHandler: ((signal: NodeJS.Signals) => void) | undefined;
  let interruptDoing = 'stopping the model';
  try {
    await withBuildkit(
      io,
      {
        progress: options.progress,
        defaultProgress: 'quiet',
        tls: options.tls,
        services: [
          fileSyncService(dirs),
          ...(images ? [images.service] : []),
          ...(prepared && Object.keys(prepared.secrets).length > 0
            ? [secretsService(prepared.secrets, io.env)]
            : []),
        ],
        ...(sharedKey ? { sharedKey } : {}),
        // the project's build takes --secret: a step's missing secret is explained with the flag
        secretFlag: prepared !== undefined,
        hideSteps: isCogBaseProbe,
        onInterruptDoing: () => (interruptHandler ? interruptDoing : 'cancelling the build'),
      },
      async ({ client, session, ref, signal, interruptedBy, onStatus }) => {
        // the solve gets its own signal: once the container runs, Ctrl-C first stops the process
        const solveController = new AbortController();
        let graceTimer: NodeJS.Timeout | undefined;
        const onAbort = () => {
          if (!interruptHandler) {
            solveController.abort();
            return;
          }
          graceTimer = setTimeout(() => solveController.abort(), stopGraceMs);
          interruptHandler(interruptedBy() ?? 'SIGINT');
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
        try {
          await gatewayBuild(
            client,
            {
              session,
              ref,
              signal: solveController.signal,
              onStatus,
              // the server must be reachable on the daemon host's ports
              entitlements: ['network.host'],
            },
            async (gw) => {
              let model;
              let config: OciImageConfig;
              if (prepared) {
                const { compiled } = await compileAgainstBase(
                  gw,
                  prepared.input,
                  sharedKey ?? '',
                  (message) => io.stderr.write(`cog: warning: ${message}\n`),
                );
                model = compiled.image;
                config = compiled.config;
              } else {
                const resolved = await resolveModelImage(gw, options.image as string, {
                  ...(images ? { local: { ...images, sessionId: session.id } } : {}),
                });
                model = resolved.state;
                config = resolved.config;
              }
              if (imageNeedsGpu(config.config?.Labels)) {
                // BuildKit's gateway containers (NewContainerRequest, v0.32) have no CDI devices field
                io.stderr.write(
                  'cog: warning: the model has build.gpu: true, but BuildKit cannot attach GPUs to the containers `cog serve`/`cog exec` run (only to build steps, which `cog run` uses); it runs without a GPU\n',
                );
              }
              const platform = {
                OS: config.os ?? 'linux',
                Architecture: config.architecture ?? 'amd64',
              };
              const rootRef = await gw.solve(model.marshal({ platform }).definition);
              const container = await GatewayContainer.create(gw, {
                mounts: [{ dest: '/', ref: rootRef }],
                network: 'host',
                platform,
              });
              try {
                const value = await run({
                  container,
                  config: config.config ?? {},
                  cwd: config.config?.WorkingDir || '/src',
                  onInterrupt: (handler, doing) => {
                    interruptHandler = handler;
                    if (doing) interruptDoing = doing;
                  },
                });
                result = { value };
              } finally {
                await container.release().catch(() => {});
              }
              return { ref: rootRef };
            },
          ).catch((err: unknown) => {
            throw explainEntitlementError(err);
          });
        } finally {
          clearTimeout(graceTimer);
          signal.removeEventListener('abort', onAbort);
        }
      },
    );
  } finally {
    await lease?.release();
  }
  if (!result) throw new Error('the model container finished without a result');
  return result.value;
}

/** A daemon that refuses host networking says so; tell the user how to allow it. */
function explainEntitlementError(err: unknown): unknown {
  if (err instanceof Error && !(err instanceof CogError && err.hint) && /network\.host/.test(err.message)) {
    return new CogError(`buildkitd refused host networking: ${err.message}`, {
      hint: 'start buildkitd with --allow-insecure-entitlement network.host (or insecure-entitlements in buildkitd.toml)',
      cause: err,
    });
  }
  return err;
}

/** NAME=VALUE entries of an OCI config's Env with `extra` set on top (later names win). */
export function processEnv(
  base: readonly string[] | undefined,
  extra: Readonly<Record<string, string>>,
): string[] {
  const env = new Map(configEnvEntries(base));
  for (const [k, v] of Object.entries(extra)) env.set(k, v);
  return [...env].map(([k, v]) => `${k}=${v}`);
}
