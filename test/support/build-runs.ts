/**
 * `cog build` runs for the tests of builds answered without a solve (up-to-date, source-only): a copy
 * of the hello model old enough to be recorded, and a build that says how it was answered.
 */
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exec } from './exec.js';
import { stepsFromPlainProgress } from './plain-steps.js';
import { repoRoot } from './testbed.js';

const cog = join(repoRoot, 'bin', 'cog');

/**
 * A copy of fixtures/models/hello at `dir`, its cog.yaml passed through `editConfig`; returned once
 * it is older than the 2 s in which a build does not record what changed (it may have read it mid-change).
 */
export async function helloCopy(dir: string, editConfig?: (config: string) => string): Promise<string> {
  await cp(join(repoRoot, 'fixtures', 'models', 'hello'), dir, { recursive: true });
  if (editConfig) {
    const config = await readFile(join(dir, 'cog.yaml'), 'utf8');
    await writeFile(join(dir, 'cog.yaml'), editConfig(config));
  }
  await sleep(2100);
  return dir;
}

export interface BuildRun {
  readonly stderr: string;
  /** the digest of `Image built as …@sha256:…` */
  readonly digest: string;
  /** a step was solved (plain progress printed one) */
  readonly solved: boolean;
  /** the build connected to buildkitd */
  readonly buildkit: boolean;
  /** answered by writing the source layer without buildkitd */
  readonly sourceOnly: boolean;
  readonly steps: { ran: string[]; cached: string[] };
}

/** `cog build ARGS --progress plain --use-cog-base-image=false` in `project`; it must succeed. */
export async function buildRun(
  project: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<BuildRun> {
  const out = await exec(cog, ['build', ...args, '--progress', 'plain', '--use-cog-base-image=false'], {
    env,
    cwd: project,
  });
  assert.equal(out.code, 0, out.stderr.slice(-3000));
  const digest = /^Image built as \S+@(sha256:[0-9a-f]{64})/m.exec(out.stderr)?.[1];
  assert.ok(digest, out.stderr);
  return {
    stderr: out.stderr,
    digest,
    solved: /^#\d+ /m.test(out.stderr),
    buildkit: /^cog: build /m.test(out.stderr),
    sourceOnly: /^cog: nothing below the project's files changed since the last build: /m.test(out.stderr),
    steps: stepsFromPlainProgress(out.stderr),
  };
}
