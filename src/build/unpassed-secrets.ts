/**
 * The secrets build.run steps mount that no `--secret` passes. As in upstream Cog, such a mount is
 * optional: BuildKit runs the step without the file, and a command that tolerates its absence goes
 * on. The user is told, since a step that needs the secret would otherwise fail for a reason it does
 * not name.
 */
import type { RunItem } from '../config/types.js';

/**
 * One warning per (step, secret) for a mount whose id is not among `passed`, naming the config
 * file's step (`cog.yaml build.run[0]`), the secret, where the step expects it and how to pass it.
 */
export function unpassedSecretWarnings(
  runCommands: readonly RunItem[],
  passed: ReadonlySet<string>,
  configName: string,
): string[] {
  return runCommands.flatMap((run, index) =>
    run.mounts
      .filter((mount) => !passed.has(mount.id))
      .map(
        (mount) =>
          `${configName} build.run[${index}] mounts the secret "${mount.id}", which was not passed with --secret: ` +
          `the step runs without ${mount.target} (pass it with --secret id=${mount.id},src=FILE or --secret id=${mount.id},env=VAR)`,
      ),
  );
}
