/**
 * Before a build that pushes (`cog push`, `cog build --push`, `--output type=image,push=true`): each
 * destination registry is pinged (GET /v2/) with our own registry client, which gives up on a registry
 * that is down, mistyped or takes connections without answering; then each destination repository is
 * asked whether it takes a push with the credentials we have (RegistryClient.checkPushAccess), so a
 * missing `cog login` or a repository the account may not push to fails in seconds, not after the
 * build. BuildKit's pusher finds all that out only after the whole build, and waits for ever on a
 * registry that never answers.
 *
 * When buildkitd pushes, a registry this machine cannot connect to (refused, no such host, a
 * certificate our client does not trust) is only warned about: buildkitd pushes from its own network
 * and with CAs of its own (a remote daemon may reach a registry this machine cannot), and says so
 * itself after the build. When cog pushes, that is an error like any other.
 */
import { CogError } from '../errors.js';
import type { RegistryClient, RegistryClientOptions } from '../registry/client.js';
import type { Keychain } from '../registry/keychain.js';
import type { RetryInfo } from '../registry/retry.js';
import { explainPushError } from './push-refusal.js';

/**
 * A repository a build pushes to, and where its name came from (`-t`, `'image' in cog.yaml`,
 * `--output …`).
 */
export interface PushTarget {
  readonly registry: string;
  readonly repository: string;
  readonly from: string;
}

export interface PushPreflightOptions {
  readonly env: NodeJS.ProcessEnv;
  /**
   * who pushes: `buildkitd` (a registry this machine cannot connect to is only warned about, and not
   * tried again) or `cog` (it is an error); default buildkitd
   */
  readonly pusher?: 'buildkitd' | 'cog';
  /**
   * the client to ask, left open: the push goes on with it, its credentials and tokens (`keychain`,
   * `onRetry` and `client` are then its own); default a client of the check's own, closed after it
   */
  readonly registry?: RegistryClient;
  /** where the credentials the push will use come from (default: the registry client's default) */
  readonly keychain?: Keychain;
  /** told of each retry of a ping (cog prints a line for it) */
  readonly onRetry?: (info: RetryInfo) => void;
  /** told of a registry this machine cannot connect to (the build goes on: buildkitd may reach it) */
  readonly onUnreachable?: (target: PushTarget, err: unknown) => void;
  readonly signal?: AbortSignal;
  /** the client's time limits (tests shorten them) */
  readonly client?: Pick<RegistryClientOptions, 'pingAnswerMs' | 'retry'>;
}

/** `targets`, each `key` once (the first name that sends a push there names it). */
function distinct(targets: readonly PushTarget[], key: (t: PushTarget) => string): PushTarget[] {
  const seen = new Map<string, PushTarget>();
  for (const target of targets) if (!seen.has(key(target))) seen.set(key(target), target);
  return [...seen.values()];
}

/** The registries of `targets`, each once (the first name that sends a push there names it). */
export const distinctRegistries = (targets: readonly PushTarget[]) => distinct(targets, (t) => t.registry);

/** The repositories of `targets`, each once. */
export const distinctRepositories = (targets: readonly PushTarget[]) =>
  distinct(targets, (t) => `${t.registry}/${t.repository}`);

const nothingBuilt = 'nothing was built (cog asks the registry before building)';

/** The error for a destination registry that did not answer its ping, naming where its name came from. */
export function unansweredRegistry(target: PushTarget, err: unknown): unknown {
  if (!(err instanceof CogError)) return err;
  return new CogError(`${target.from}: cannot push to ${target.registry}: ${err.message}`, {
    hint: `${err.hint ? `${err.hint}; ` : ''}${nothingBuilt}`,
    cause: err,
  });
}

/** The error for a destination repository that refused a push (explainPushError's words), before the build. */
export function refusedPush(
  target: PushTarget,
  err: unknown,
  hadCredentials: boolean,
  env: NodeJS.ProcessEnv,
): unknown {
  const explained = explainPushError(err, target, hadCredentials, env);
  if (!(explained instanceof CogError)) return explained;
  return new CogError(`${target.from}: ${explained.message}`, {
    hint: `${explained.hint ? `${explained.hint}; ` : ''}${nothingBuilt}`,
    cause: err,
  });
}

/**
 * Resolves when every registry answers and every repository takes a push with our credentials (a
 * registry buildkitd pushes to that this machine cannot connect to is told to `onUnreachable` and not
 * asked further); rejects naming the first that did not answer, answered as no registry does, or
 * refused the push.
 */
export async function checkPushRegistries(
  targets: readonly PushTarget[],
  options: PushPreflightOptions,
): Promise<void> {
  if (targets.length === 0) return;
  // loaded only to push: the client's module changes a V8 flag (see cli/source-only.ts)
  const [{ RegistryClient, isConnectionFailure }, { defaultRetryPolicy, isRetryableError }] =
    await Promise.all([import('../registry/client.js'), import('../registry/retry.js')]);
  const client =
    options.registry ??
    new RegistryClient({
      env: options.env,
      ...(options.keychain ? { keychain: options.keychain } : {}),
      retry: {
        ...(options.client?.retry ?? defaultRetryPolicy),
        ...(options.onRetry ? { onRetry: options.onRetry } : {}),
      },
      ...(options.client?.pingAnswerMs !== undefined ? { pingAnswerMs: options.client.pingAnswerMs } : {}),
    });
  const byBuildkitd = (options.pusher ?? 'buildkitd') === 'buildkitd';
  try {
    const answered = await Promise.all(
      distinctRegistries(targets).map((target) =>
        // buildkitd's push: a connection failure is only warned about, and not tried again (that
        // would hold the build)
        client
          .checkAnswers(target.registry, options.signal, (err) =>
            byBuildkitd ? !isConnectionFailure(err) && isRetryableError(err) : isRetryableError(err),
          )
          .then(
            () => ({ target, answered: true }),
            (err: unknown) => {
              if (options.signal?.aborted || !byBuildkitd || !isConnectionFailure(err))
                throw unansweredRegistry(target, err);
              options.onUnreachable?.(target, err);
              return { target, answered: false };
            },
          ),
      ),
    );
    const reachable = new Set(answered.filter((a) => a.answered).map((a) => a.target.registry));
    await Promise.all(
      distinctRepositories(targets)
        .filter((target) => reachable.has(target.registry))
        .map((target) =>
          client.checkPushAccess(target, options.signal).catch(async (err: unknown) => {
            if (options.signal?.aborted) throw err;
            throw refusedPush(target, err, await client.hasCredentials(target.registry), options.env);
          }),
        ),
    );
  } finally {
    if (client !== options.registry) await client.close();
  }
}
