// A build.run step that mounts a secret re-runs when the secret's content changes, and stays cached
// while it does not (BuildKit alone would keep the step cached with a rotated token); the content key
// is in no image config.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { type ExecResult, exec, execOk } from '../support/exec.js';
import { stepsFromPlainProgress } from '../support/plain-steps.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;
let project: string;
let store: string;

before(async () => {
  tb = await ensureTestbed();
  project = join(await tempDir('cogts-secret-cache-'), 'model');
  await cp(join(repoRoot, 'fixtures', 'models', 'build-run-secret'), project, { recursive: true });
  store = await tempDir('cogts-secret-cache-store-');
});

const explain = (r: ExecResult) => `exit ${r.code}\n--- stderr\n${r.stderr}`;

async function buildWith(token: string): Promise<string[]> {
  const r = await exec(
    cog,
    ['build', '-t', 'secret-cache:dev', '--progress', 'plain', '--secret', 'id=token,env=COGTS_CACHE_TOKEN'],
    { cwd: project, env: { ...tb.env, COG_IMAGE_STORE: store, COGTS_CACHE_TOKEN: token } },
  );
  assert.equal(r.code, 0, explain(r));
  assert.ok(!r.stderr.includes(token), 'the secret is not in the output');
  return stepsFromPlainProgress(r.stderr).ran;
}

test(
  'a changed secret re-runs the step that mounts it; the same secret keeps it cached',
  { timeout: 600_000 },
  async () => {
    const first = randomBytes(16).toString('hex');
    const ranFirst = await buildWith(first);
    assert.ok(
      ranFirst.some((s) => s.startsWith('build.run[0]')),
      `first build ran the step: ${ranFirst.join(' | ')}`,
    );

    const ranAgain = await buildWith(first);
    assert.deepEqual(ranAgain, [], 'same secret, same project: every step cached');

    const ranRotated = await buildWith(randomBytes(16).toString('hex'));
    assert.ok(
      ranRotated.some((s) => s.startsWith('build.run[0]')),
      `rotated secret: ${ranRotated.join(' | ')}`,
    );
    assert.ok(
      !ranRotated.some((s) => s.startsWith('install') || s.includes('requirements')),
      `steps before it stay cached: ${ranRotated.join(' | ')}`,
    );

    // the image config (read by skopeo from the store's OCI layout) has no trace of the key
    const config = await execOk('skopeo', ['inspect', '--config', `oci:${store}:secret-cache:dev`]);
    const env = (JSON.parse(config.stdout) as { config?: { Env?: string[] } }).config?.Env ?? [];
    assert.ok(
      env.some((e) => e.startsWith('PATH=')),
      `the config was read: ${config.stdout.slice(0, 200)}`,
    );
    assert.ok(!config.stdout.includes('COG_BUILD_SECRETS_KEY'), 'the key is not in the image config');
  },
);

test(
  'a step whose secret nobody passed is warned of, with how to pass it: --secret, on cog build and on cog run alike',
  { timeout: 600_000 },
  async () => {
    const env = { ...tb.env, COG_IMAGE_STORE: store };
    // the mount is optional (as upstream's): the step runs without the file, and `test -s` fails it
    const warning =
      /^cog: warning: cog\.yaml build\.run\[0\] mounts the secret "token", which was not passed with --secret: .*\(pass it with --secret id=token,src=FILE or --secret id=token,env=VAR\)$/m;
    const build = await exec(cog, ['build', '-t', 'secret-cache:missing'], { cwd: project, env });
    assert.equal(build.code, 1, explain(build));
    assert.match(build.stderr, warning);
    assert.match(build.stderr, /^cog: error: process .*test -s \/run\/secrets\/token.* exit code: 1$/m);
    // cog run builds the project and takes --secret too (it was told to `cog build --secret` first)
    const run = await exec(cog, ['run'], { cwd: project, env });
    assert.equal(run.code, 1, explain(run));
    assert.match(run.stderr, warning);
    assert.match(run.stderr, /^cog: error: process .*test -s \/run\/secrets\/token.* exit code: 1$/m);
  },
);

test(
  '--secret id=NAME alone takes the variable NAME when it is set: the step reads it',
  { timeout: 600_000 },
  async () => {
    // the project has no file named token: before, id=token alone was that file, and was refused
    const token = randomBytes(16).toString('hex');
    const r = await exec(
      cog,
      ['build', '-t', 'secret-cache:implied', '--progress', 'plain', '--secret', 'id=token'],
      {
        cwd: project,
        env: { ...tb.env, COG_IMAGE_STORE: store, token },
      },
    );
    assert.equal(r.code, 0, explain(r));
    assert.ok(!r.stderr.includes(token), 'the secret is not in the output');
    // a new secret: the step ran, and `test -s /run/secrets/token` found it there
    const ran = stepsFromPlainProgress(r.stderr).ran;
    assert.ok(
      ran.some((s) => s.startsWith('build.run[0]')),
      ran.join(' | '),
    );
  },
);
