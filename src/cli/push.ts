/**
 * `cog push [IMAGE]`: build the project into the local image store (as `cog build -t IMAGE` does; the
 * cache makes this quick when nothing changed), then push it from the store with our registry client,
 * not BuildKit's pusher, so blobs already in the registry are skipped, blobs pushed to a sibling
 * repository before are mounted, and uploads go in resumable chunks. stdout gets the pushed reference
 * with its digest; progress and messages go to stderr.
 */
import { loadConfig } from '../config/index.js';
import { CogError } from '../errors.js';
import { formatSize } from '../image/inspect.js';
import { mountCandidates, readPushHistory, recordPush } from '../image/push-history.js';
import { resolveProgressMode } from '../progress/index.js';
import { createPushProgress } from '../progress/push-progress.js';
import {
  type PushResult,
  type Reference,
  RegistryClient,
  RegistryError,
  type RetryInfo,
  defaultRetryPolicy,
  formatReference,
  parseReference,
  pushFromLayout,
} from '../registry/index.js';
import { type BuildArgs, buildImage } from './build.js';
import type { CommandIo } from './debug-solve.js';
import { InterruptedError, withInterrupt } from './interrupt.js';

export type PushArgs = Pick<
  BuildArgs,
  | 'file'
  | 'secrets'
  | 'noCache'
  | 'progress'
  | 'openapiSchema'
  | 'useCudaBaseImage'
  | 'useCogBaseImage'
  | 'precompile'
  | 'strip'
  | 'timestamp'
  | 'platform'
  | 'tls'
  | 'separateWeights'
> & {
  /** where to push; default: `image:` in cog.yaml */
  readonly image: string | undefined;
};

const replicateRegistry = 'r8.im';

/** The name to push as: IMAGE, else cog.yaml's `image:`; model mode is not supported yet. */
export function pushTarget(
  image: string | undefined,
  config: { image: string | null; model: string | null },
): string {
  if (config.model)
    throw new CogError('pushing a `model:` bundle (an OCI index with managed weights) is not supported yet', {
      hint: 'for now set `image:` in cog.yaml instead of `model:`, or pass the image name: cog push REGISTRY/REPO:TAG',
    });
  const target = image ?? config.image ?? undefined;
  if (!target)
    throw new CogError('no image to push to: cog push needs an image name', {
      hint: "set the 'image' option in cog.yaml (e.g. `image: r8.im/your-username/your-model`) or pass one: cog push REGISTRY/REPO[:TAG]",
    });
  return target;
}

/** What a retry says: the (already redacted) error, the attempt, and the wait. */
export function retryLine(info: RetryInfo): string {
  const what = info.error instanceof Error ? info.error.message : String(info.error);
  return `cog: ${what.split('\n')[0]}; retrying (${info.attempt}/${info.attempts - 1}) in ${(info.delayMs / 1000).toFixed(1)}s`;
}

/** The model page for an r8.im image (`https://replicate.com/owner/model`), else undefined. */
export function replicateModelUrl(ref: Reference): string | undefined {
  return ref.registry === replicateRegistry ? `https://replicate.com/${ref.repository}` : undefined;
}

/** Registry refusals, said in terms of `cog push` and what to do about them. Never names a credential. */
export function explainPushError(err: unknown, ref: Reference, hadCredentials: boolean): unknown {
  if (!(err instanceof RegistryError)) return err;
  const where = `${ref.registry}/${ref.repository}`;
  if (err.status === 401)
    return new CogError(
      hadCredentials
        ? `${ref.registry} rejected the credentials for pushing to ${where}`
        : `${ref.registry} requires authentication to push to ${where}, and no credentials for it were found`,
      {
        hint: hadCredentials
          ? `log in again with \`cog login ${ref.registry}\` (or fix COG_REGISTRY_USERNAME / COG_REGISTRY_PASSWORD)`
          : `log in with \`cog login ${ref.registry}\`, or set COG_REGISTRY_USERNAME and COG_REGISTRY_PASSWORD`,
        cause: err,
      },
    );
  if (ref.registry === replicateRegistry && err.status === 404)
    return new CogError(`unable to find an existing Replicate model at ${where}`, {
      hint: `create the model on replicate.com first (https://replicate.com/create), then push again; also check that you are logged in as its owner (\`cog login\`)`,
      cause: err,
    });
  if (err.status === 403)
    return new CogError(`${ref.registry} denied pushing to ${where}`, {
      hint: `check the repository name and that your account (\`cog login ${ref.registry}\`) may push to it`,
      cause: err,
    });
  return err;
}

/** The closing summary on stderr: counts, bytes and time. */
export function pushSummary(result: PushResult): string {
  const { uploaded, existed, mounted } = result.blobs;
  const parts = [`${uploaded} uploaded`, `${existed} already there`, `${mounted} mounted`];
  const retries =
    result.resumes + result.restarts > 0 ? `, ${result.resumes} resumed, ${result.restarts} restarted` : '';
  return `Pushed ${uploaded + existed + mounted} blobs (${parts.join(', ')}${retries}): ${formatSize(result.bytesUploaded)} uploaded in ${result.seconds.toFixed(1)}s`;
}

export async function push(args: PushArgs, io: CommandIo, cwd = process.cwd()): Promise<PushResult> {
  const loaded = loadConfig({ cwd, file: args.file, env: io.env });
  const target = pushTarget(args.image, loaded.completed);
  const ref = parseReference(target); // a bad name fails before the build

  const built = await buildImage(
    {
      ...args,
      tag: target,
      push: false,
      outputs: [],
      smokeTest: false,
      cacheFrom: [],
      cacheTo: [],
      metadataFile: undefined,
    },
    io,
    cwd,
  );
  if (!built.storeDir) throw new CogError('the build did not write to the local image store');

  const mode = resolveProgressMode(args.progress, io.env, io.stderr.isTTY === true);
  const progress = createPushProgress(mode, io.stderr, { target: formatReference(ref) });
  const client = new RegistryClient({
    env: io.env,
    retry: {
      ...defaultRetryPolicy,
      onRetry: (info) => progress.note(retryLine(info)),
    },
  });
  const mountFrom = mountCandidates(
    await readPushHistory(built.storeDir),
    ref.registry,
    ref.repository,
    built.digest,
  );
  let result: PushResult;
  try {
    result = await withInterrupt(io.stderr, (signal) =>
      pushFromLayout(client, built.storeDir!, target, ref, {
        signal,
        mountFrom,
        onProgress: progress.onProgress,
        env: io.env,
      }),
    );
  } catch (err) {
    await progress.close();
    if (err instanceof InterruptedError)
      throw new CogError('interrupted: the push was cancelled', {
        hint: 'run cog push again; blobs that reached the registry are not uploaded again',
        exitCode: 130,
      });
    throw explainPushError(err, ref, await client.hasCredentials(ref.registry));
  } finally {
    await client.close();
  }
  await progress.close();
  await recordPush(built.storeDir, {
    registry: ref.registry,
    repository: ref.repository,
    digest: result.digest,
    at: Date.now(),
  });
  io.stderr.write(`${pushSummary(result)}\n`);
  const url = replicateModelUrl(ref);
  if (url) io.stderr.write(`Run your model on Replicate: ${url}\n`);
  io.stdout.write(`${result.reference}\n`);
  return result;
}
