/**
 * Running a short helper program (git, python3 --version, nvidia-smi) for what it prints. child_process
 * is loaded on first use: most commands never need it, and start-up time counts.
 */

/** What `program` printed; undefined when it is missing, exits non-zero or runs over 5 s. */
export async function commandOutput(
  program: string,
  args: readonly string[],
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<{ readonly stdout: string; readonly stderr: string } | undefined> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(program, [...args], { ...options, timeout: 5000 }, (err, stdout, stderr) =>
      resolve(err ? undefined : { stdout, stderr }),
    );
  });
}
