/**
 * Before a build whose image BuildKit pushes (`cog build --push`, `--output type=image,push=true`):
 * each destination registry is pinged (GET /v2/) with our own registry client, which gives up on a
 * registry that is down, mistyped or takes connections without answering as `cog push` does. BuildKit's
 * pusher finds that out only after the whole build, and waits for ever on a registry that never
 * answers. The ping carries no credentials (a registry that asks for them has answered; they go to
 * buildkitd as before). A registry this machine cannot connect to (refused, no such host, a certificate
 * our client does not trust) is only warned about: buildkitd pushes from its own network and with CAs of
 * its own (a remote daemon may reach a registry this machine cannot), and says so itself after the build.
 */
import { CogError } from '../errors.js';
import type { RegistryClientOptions } from '../registry/client.js';
import type { RetryInfo } from '../registry/retry.js';

/** A registry a build pushes to, and where its name came from (`-t`, `'image' in cog.yaml`, `--output …`). */
export interface PushRegistry {
  readonly registry: string;
  readonly from: string;
}

export interface PushPreflightOptions {
  readonly env: NodeJS.ProcessEnv;
  /** told of each retry of a ping (cog prints a line for it) */
  readonly onRetry?: (info: RetryInfo) => void;
  /** told of a registry this machine cannot connect to (the build goes on: buildkitd may reach it) */
  readonly onUnreachable?: (target: PushRegistry, err: unknown) => void;
  readonly signal?: AbortSignal;
  /** the client's time limits (tests shorten them) */
  readonly client?: Pick<RegistryClientOptions, 'pingAnswerMs' | 'retry'>;
}

/** The registries of `targets`, each once (the first name that sends a push there names it). */
export function distinctRegistries(targets: readonly PushRegistry[]): PushRegistry[] {
  const seen = new Map<string, PushRegistry>();
  for (const target of targets) if (!seen.has(target.registry)) seen.set(target.registry, target);
  return [...seen.values()];
}

/** The error for a destination registry that did not answer its ping, naming where its name came from. */
export function unansweredRegistry(target: PushRegistry, err: unknown): unknown {
  if (!(err instanceof CogError)) return err;
  return new CogError(`${target.from}: cannot push to ${target.registry}: ${err.message}`, {
    hint: `${err.hint ? `${err.hint}; ` : ''}nothing was built (cog asks the registry before building)`,
    cause: err,
  });
}

/**
 * Resolves when every registry answers or cannot be connected to from here (told to `onUnreachable`);
 * rejects naming the first that took the connection and did not answer, or answered as no registry does.
 */
export async function checkPushRegistries(
  targets: readonly PushRegistry[],
  options: PushPreflightOptions,
): Promise<void> {
  if (targets.length === 0) return;
  // loaded only to push: the client's module changes a V8 flag (see cli/source-only.ts)
  const [{ RegistryClient, isConnectionFailure }, { defaultRetryPolicy, isRetryableError }] =
    await Promise.all([import('../registry/client.js'), import('../registry/retry.js')]);
  const client = new RegistryClient({
    env: options.env,
    retry: {
      ...(options.client?.retry ?? defaultRetryPolicy),
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
    },
    ...(options.client?.pingAnswerMs !== undefined ? { pingAnswerMs: options.client.pingAnswerMs } : {}),
  });
  try {
    const failures = await Promise.all(
      distinctRegistries(targets).map((target) =>
        // a connection failure is only warned about: no retries for it, which would hold the build
        client
          .checkAnswers(
            target.registry,
            options.signal,
            (err) => !isConnectionFailure(err) && isRetryableError(err),
          )
          .then(
            () => undefined,
            (err: unknown) => {
              if (options.signal?.aborted || !isConnectionFailure(err)) return { target, err };
              options.onUnreachable?.(target, err);
              return undefined;
            },
          ),
      ),
    );
    const failed = failures.find((f) => f !== undefined);
    if (failed) throw unansweredRegistry(failed.target, failed.err);
  } finally {
    await client.close();
  }
}
