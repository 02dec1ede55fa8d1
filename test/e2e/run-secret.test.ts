// The commands that build the project before running it (run, exec, and predict, train, serve with
// them) take --secret as `cog build` does: a model whose build.run step mounts a secret builds and
// runs, the secret's value appears in no output, and without --secret a warning names the secret and
// the flag, as `cog build`'s does (the mount is optional: a step that does without the secret builds).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { type ExecResult, exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;
let project: string;
let tolerant: string;
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
  // the same model, with a step that does without the secret when none is passed
  tolerant = join(dir, 'tolerant');
  await cp(join(repoRoot, 'fixtures', 'models', 'build-run-secret'), tolerant, { recursive: true });
  const config = await readFile(join(tolerant, 'cog.yaml'), 'utf8');
  await writeFile(
    join(tolerant, 'cog.yaml'),
    config.replace(
      /command: .*/,
      'command: if test -s /run/secrets/token; then sha256sum /run/secrets/token | cut -c1-12; else echo no-secret; fi > /token-fingerprint',
    ),
  );
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
  'without --secret, cog build, cog run and cog exec warn of the secret and --secret; the step that needs it fails',
  { timeout: 600_000 },
  async () => {
    // the mount is optional (as upstream's): the fixture's `test -s /run/secrets/token` fails the step
    const warning =
      'cog: warning: cog.yaml build.run[0] mounts the secret "token", which was not passed with --secret: the step runs without /run/secrets/token (pass it with --secret id=token,src=FILE or --secret id=token,env=VAR)';
    for (const args of [['build', '-t', 'h2-run-secret:none'], ['run'], ['exec', 'true']]) {
      const r = await exec(cog, args, { cwd: project, env: tb.env });
      assert.notEqual(r.code, 0, explain(r));
      assert.ok(r.stderr.split('\n').includes(warning), explain(r));
      assert.match(
        r.stderr,
        /^cog: error: process .*test -s \/run\/secrets\/token.* did not complete successfully/m,
      );
    }
  },
);

test(
  'a run step that does without its secret builds without --secret, with a warning naming it; with --secret it reads it',
  { timeout: 600_000 },
  async () => {
    const without = await exec(cog, ['run'], { cwd: tolerant, env: tb.env });
    assert.equal(without.code, 0, explain(without));
    assert.equal(without.stdout.trim(), 'no-secret');
    assert.match(
      without.stderr,
      /^cog: warning: cog\.yaml build\.run\[0\] mounts the secret "token", which was not passed with --secret: the step runs without \/run\/secrets\/token/m,
    );
    const withSecret = await exec(cog, ['run', '--secret', `id=token,src=${secretFile}`], {
      cwd: tolerant,
      env: tb.env,
    });
    assert.equal(withSecret.code, 0, explain(withSecret));
    assert.equal(withSecret.stdout.trim(), fingerprint);
    assert.ok(!withSecret.stderr.includes('cog: warning: cog.yaml build.run[0]'), explain(withSecret));
    assertSecretNotShown(withSecret);
  },
);
