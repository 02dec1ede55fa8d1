// The commands that build the project before running it (run, exec, and predict, train, serve with
// them) take --secret as `cog build` does: a model whose build.run step mounts a secret builds and
// runs, the secret's value appears in no output, and without --secret the error names the secret and
// the flag, as `cog build`'s does.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { type ExecResult, exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;
let project: string;
let secretFile: string;
// random per run: the fixture's step writes the first 12 hex digits of its sha256 to /token-fingerprint
const secret = randomBytes(24).toString('hex');
const fingerprint = createHash('sha256').update(secret).digest('hex').slice(0, 12);

before(async () => {
  tb = await ensureTestbed();
  const dir = await tempDir('cogts-run-secret-');
  project = join(dir, 'model');
  await cp(join(repoRoot, 'fixtures', 'models', 'build-run-secret'), project, { recursive: true });
  secretFile = join(dir, 'token.txt');
  await writeFile(secretFile, secret);
});

const explain = (r: ExecResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

function assertSecretNotShown(r: ExecResult): void {
  assert.ok(!r.stdout.includes(secret), `stdout shows the secret:\n${r.stdout}`);
  assert.ok(!r.stderr.includes(secret), `stderr shows the secret:\n${r.stderr}`);
}

test(
  'cog run --secret builds a model whose run step mounts it, and runs it',
  { timeout: 600_000 },
  async () => {
    const r = await exec(cog, ['run', '--secret', `id=token,src=${secretFile}`], {
      cwd: project,
      env: tb.env,
    });
    assert.equal(r.code, 0, explain(r));
    // the runner returns what the step wrote from the secret
    assert.equal(r.stdout.trim(), fingerprint);
    assertSecretNotShown(r);
  },
);

test('cog exec --secret builds the model and runs the command in it', { timeout: 600_000 }, async () => {
  const r = await exec(
    cog,
    ['exec', '--secret', `id=token,src=${secretFile}`, '--', 'cat', '/token-fingerprint'],
    {
      cwd: project,
      env: tb.env,
    },
  );
  assert.equal(r.code, 0, explain(r));
  assert.equal(r.stdout.trim(), fingerprint);
  assertSecretNotShown(r);
});

test(
  'without --secret, cog run and cog exec name the secret and --secret, as cog build does',
  { timeout: 600_000 },
  async () => {
    const hintOf = (r: ExecResult) => r.stderr.split('\n').find((line) => line.startsWith('hint: '));
    const build = await exec(cog, ['build', '-t', 'h2-run-secret:none'], { cwd: project, env: tb.env });
    assert.notEqual(build.code, 0, explain(build));
    const expected =
      'hint: a build step mounts the secret "token": pass it with --secret id=token,src=FILE or --secret id=token,env=VAR';
    assert.equal(hintOf(build), expected, explain(build));
    for (const args of [['run'], ['exec', 'true']]) {
      const r = await exec(cog, args, { cwd: project, env: tb.env });
      assert.notEqual(r.code, 0, explain(r));
      assert.equal(hintOf(r), expected, explain(r));
    }
  },
);
