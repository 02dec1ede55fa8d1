/** The labels a build reads from the installed packages (`pip freeze` in the image). */

/**
 * run.cog.pip_freeze, and run.cog.version from the cog SDK actually installed (what consumers of the
 * label compare against SDK features); the planner's value (cog-ts's own version) stays when cog is
 * not a plain `cog==X` line, e.g. installed from a URL.
 */
export function freezeLabels(pipFreeze: string): Record<string, string> {
  const sdk = /^cog==(\S+)$/m.exec(pipFreeze)?.[1];
  return { 'run.cog.pip_freeze': pipFreeze, ...(sdk ? { 'run.cog.version': sdk } : {}) };
}
