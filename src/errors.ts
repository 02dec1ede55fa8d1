/**
 * Errors a user can act on. Every error carries a hint that says what to do next; the CLI prints
 * message and hint and exits non-zero, without a stack trace.
 */
export class CogError extends Error {
  readonly hint: string | undefined;
  /** process exit code the CLI uses for this error */
  readonly exitCode: number;

  constructor(message: string, options: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A command that is planned and listed in `--help` but not built yet. */
export class NotImplementedError extends CogError {
  constructor(command: string, issue: number) {
    super(`\`cog ${command}\` is not implemented yet in cog-ts`, {
      hint: `it is planned in issue #${issue}; until then use upstream Cog for this command`,
      exitCode: 2,
    });
  }
}
