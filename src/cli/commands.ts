/**
 * The commands `cog` offers, with the issue that builds each one. Commands listed here but not yet
 * built fail with a NotImplementedError naming their issue, so `--help` shows the whole plan.
 */
export interface PlannedCommand {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly describe: string;
  readonly issue: number;
}

export const plannedCommands: readonly PlannedCommand[] = [
  {
    name: 'init',
    describe: 'Write a starter cog.yaml, run.py, requirements.txt and .dockerignore',
    issue: 4,
  },
  { name: 'build', describe: 'Build an image from cog.yaml with BuildKit (no Docker daemon)', issue: 4 },
  {
    name: 'debug',
    describe: 'Print the build plan for cog.yaml as text (--format json or llb for the LLB graph)',
    issue: 4,
  },
  {
    name: 'run',
    aliases: ['predict'],
    describe: 'Run a prediction on the project (built first) or on IMAGE',
    issue: 5,
  },
  { name: 'serve', describe: "Serve a model's HTTP API on a local port", issue: 5 },
  {
    name: 'exec',
    describe: "Run a command in the model's environment (a copy of the project at /src)",
    issue: 5,
  },
  { name: 'train', describe: 'Run a training on the project (built first) or on IMAGE', issue: 5 },
  { name: 'push', describe: 'Build and push a model image to an OCI registry', issue: 6 },
  { name: 'login', describe: 'Log in to r8.im or another OCI registry', issue: 6 },
  { name: 'logout', describe: 'Remove stored registry credentials', issue: 6 },
  { name: 'image', describe: 'List and remove images in the local image store', issue: 4 },
  { name: 'cache', describe: "Show and free buildkitd's build cache", issue: 4 },
  { name: 'inspect', describe: "Show a model image's labels, schema and size without pulling it", issue: 6 },
  { name: 'doctor', describe: 'Check the project and this machine for common problems', issue: 4 },
];

/** The one-line description of a command, as `--help` lists it. */
export function describeCommand(name: string): string {
  const command = plannedCommands.find((c) => c.name === name);
  if (!command) throw new Error(`no command ${name}`);
  return command.describe;
}
