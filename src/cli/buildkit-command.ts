/**
 * What every command that talks to buildkitd does around its work: render progress, connect (or start
 * a private daemon), open a session with the command's services, cancel on Ctrl-C, explain registry
 * refusals, and close everything in order whatever happens.
 */
import { pointToShownOutput } from '../runtime/server-output.js';
import { authService, explainRegistryAuthError, explainRegistryReachError } from '../buildkit/auth.js';
import { type BuildkitClient, newId } from '../buildkit/client.js';
import { connectBuildkit } from '../buildkit/daemon.js';
import type { SolveOptions } from '../buildkit/solve.js';
import { explainMissingSecret } from '../buildkit/secrets.js';
import { Session, type SessionService } from '../buildkit/session.js';
import { type TlsFlags, withTls } from '../buildkit/tls.js';
import { hidingVertices } from '../progress/hide.js';
import { maskingSecrets } from '../progress/mask.js';
import { redactError } from '../registry/redact.js';
import { type Keychain, sessionKeychain } from '../registry/keychain.js';
import { sessionTokens } from './session-tokens.js';
import { type ProgressMode, createProgressRenderer, resolveProgressMode } from '../progress/index.js';
import type { CommandIo } from './debug-solve.js';
import { withInterrupt } from './interrupt.js';

export interface BuildkitCommandOptions {
  /** --progress; undefined falls back to BUILDKIT_PROGRESS, then `defaultProgress` */
  readonly progress: string | undefined;
  /** what to show when neither the flag nor BUILDKIT_PROGRESS chooses (default: auto) */
  readonly defaultProgress?: string;
  readonly tls?: TlsFlags | undefined;
  /** the session's services; registry auth is always added */
  readonly services: readonly SessionService[];
  /** keeps context transfers of the same project incremental */
  readonly sharedKey?: string;
  /** steps left out of the progress display, by name (e.g. a probe whose failure is only a warning) */
  readonly hideSteps?: (name: string) => boolean;
  /** what the first Ctrl-C does, for its message (default: cancelling the build) */
  readonly onInterruptDoing?: () => string;
  /**
   * the credentials the session hands buildkitd and fetches its tokens with (default: config.json's); a
   * push build passes the keychain its check before the build asked with (COG_REGISTRY_USERNAME/PASSWORD
   * for the destination first), so a credential helper runs once for both
   */
  readonly keychain?: Keychain;
  /** the command takes --secret: a step's missing secret is explained with the flag, else with `cog build` */
  readonly secretFlag?: boolean;
}

export interface BuildkitContext {
  readonly client: BuildkitClient;
  readonly session: Session;
  /** the build's id, printed on stderr so `buildctl debug histories` can find it */
  readonly ref: string;
  readonly signal: AbortSignal;
  /** the signal that aborted `signal` (SIGINT or SIGTERM), once one did */
  readonly interruptedBy: () => NodeJS.Signals | undefined;
  readonly onStatus: NonNullable<SolveOptions['onStatus']>;
}

/** The progress view a command shows: --progress, else BUILDKIT_PROGRESS, else its default. */
export function progressModeOf(
  io: CommandIo,
  options: Pick<BuildkitCommandOptions, 'progress' | 'defaultProgress'>,
): ProgressMode {
  return resolveProgressMode(
    options.progress ?? (io.env.BUILDKIT_PROGRESS ? undefined : options.defaultProgress),
    io.env,
    io.stderr.isTTY === true,
  );
}

/** Whether the progress view prints the build's whole log (the model server's output included). */
export const showsWholeLog = (mode: ProgressMode) => mode === 'plain' || mode === 'rawjson';

export async function withBuildkit<T>(
  io: CommandIo,
  options: BuildkitCommandOptions,
  work: (context: BuildkitContext) => Promise<T>,
): Promise<T> {
  const mode = progressModeOf(io, options);
  const progress = createProgressRenderer(mode, io.stderr, { env: io.env });
  const visible = hidingVertices(options.hideSteps ?? (() => false));
  // the credentials the session gave buildkitd: masked in what it says (a registry may echo them)
  const handedOut = new Set<string>();
  const masked = maskingSecrets(() => [...handedOut]);
  try {
    // Ctrl-C is handled from the start: a private daemon that is starting is stopped too
    return await withInterrupt(
      io.stderr,
      async (signal, interruptedBy) => {
        const connection = await connectBuildkit({
          env: io.env,
          stderr: io.stderr,
          ...withTls(options.tls),
          signal,
        });
        // one keychain for the credentials the session hands out and the tokens it fetches
        const keychain = options.keychain ?? sessionKeychain([], { env: io.env });
        const tokens = sessionTokens(io.env, keychain);
        try {
          signal.throwIfAborted();
          const session = Session.start(
            connection.client,
            [authService({ env: io.env, keychain, tokens: tokens.source, handedOut }), ...options.services],
            options.sharedKey ?? '',
          );
          try {
            const ref = newId();
            io.stderr.write(`cog: build ${ref} on ${connection.client.address.display}\n`);
            return await work({
              client: connection.client,
              session,
              ref,
              signal,
              interruptedBy,
              onStatus: (status) => progress.update(masked(visible(status))),
            }).catch((err: unknown) => {
              throw redactError(
                explainMissingSecret(
                  explainRegistryReachError(
                    explainRegistryAuthError(pointToShownOutput(err, showsWholeLog(mode)), {
                      env: io.env,
                    }),
                  ),
                  options.secretFlag === true,
                ),
                [...handedOut],
              );
            });
          } finally {
            await progress.close();
            session.close();
          }
        } finally {
          await tokens.close();
          await connection.close();
        }
      },
      options.onInterruptDoing,
    );
  } finally {
    await progress.close();
  }
}
