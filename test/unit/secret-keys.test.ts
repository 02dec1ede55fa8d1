// build.run steps that mount a secret carry a key derived from its content, so a changed secret re-runs
// them; the key never reaches the image config, and the content never reaches the graph.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { secretContentKey, secretKeysFor } from '../../src/build/secret-keys.js';
import { unpassedSecretWarnings } from '../../src/build/unpassed-secrets.js';
import { checkSecretFiles } from '../../src/buildkit/secret-flags.js';
import { CogError } from '../../src/errors.js';
import { compilePlan, secretsKeyEnv } from '../../src/plan/compile.js';
import { planBuild, stepSecretsKey } from '../../src/plan/plan.js';
import { exec } from '../support/exec.js';
import { minimalPlanInput } from '../support/plan-inputs.js';
import { repoRoot } from '../support/testbed.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const input = minimalPlanInput({
  sdk: { kind: 'pypi', version: '0.23.1' },
  runCommands: [
    { command: 'pip download private-pkg', secrets: [{ id: 'token', target: '/run/secrets/token' }] },
    { command: 'echo no secret here', secrets: [] },
  ],
});

test('a content key is deterministic, differs with the content, and does not contain it', async () => {
  const a = await secretContentKey(Buffer.from('hunter2'));
  assert.match(a, /^scrypt:[0-9a-f]{64}$/);
  assert.equal(await secretContentKey(Buffer.from('hunter2')), a);
  assert.notEqual(await secretContentKey(Buffer.from('hunter3')), a);
  assert.ok(!a.includes(Buffer.from('hunter2').toString('hex')));
});

test('only secrets that steps mount are read; an unreadable mounted one names its flag', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-secret-keys-'));
  dirs.push(dir);
  await writeFile(join(dir, 'token'), 'v1');
  const keys = await secretKeysFor(
    { token: { file: join(dir, 'token') }, unused: { file: join(dir, 'absent') } },
    new Set(['token']),
    {},
  );
  assert.deepEqual(Object.keys(keys), ['token']);
  assert.equal(keys.token, await secretContentKey(Buffer.from('v1')));
  await assert.rejects(
    secretKeysFor({ token: { env: 'NOT_SET_ANYWHERE' } }, new Set(['token']), {}),
    (err: unknown) =>
      err instanceof CogError && /--secret id=token: .*NOT_SET_ANYWHERE is not set/.test(err.message),
  );
  const fromEnv = await secretKeysFor({ token: { env: 'TOKEN' } }, new Set(['token']), { TOKEN: 'v1' });
  assert.equal(fromEnv.token, keys.token);
});

test('the step key combines the mounted secrets sorted by id, and is absent without keys', () => {
  const keys = { b: 'scrypt:bb', a: 'scrypt:aa' };
  assert.equal(stepSecretsKey([{ id: 'b' }, { id: 'a' }, { id: 'b' }], keys), 'a:scrypt:aa,b:scrypt:bb');
  assert.equal(stepSecretsKey([{ id: 'c' }], keys), undefined);
  assert.equal(stepSecretsKey([{ id: 'a' }], undefined), undefined);
});

test('only the step mounting the secret carries the key; the image config never does', () => {
  const key = 'scrypt:' + 'c'.repeat(64);
  const plan = planBuild({ ...input, secretKeys: { token: key } });
  const runs = plan.steps.filter((s) => s.kind === 'run' && s.name.startsWith('build.run'));
  assert.deepEqual(
    runs.map((s) => (s.kind === 'run' ? s.secretsKey : 'not a run')),
    [`token:${key}`, undefined],
  );
  const compiled = compilePlan(plan, { baseConfig: {} });
  const execs = compiled.image
    .marshal()
    .ops.filter((o) => o.op.exec)
    .map((o) => ({ name: o.metadata.description?.['llb.customname'], env: o.op.exec?.meta?.env ?? [] }));
  const withKey = execs.filter((e) => e.env.includes(`${secretsKeyEnv}=token:${key}`));
  assert.deepEqual(
    withKey.map((e) => e.name),
    ['build.run[0]: pip download private-pkg'],
  );
  assert.ok(!(compiled.config.config?.Env ?? []).some((e) => e.startsWith(secretsKeyEnv)));
  // a changed secret changes that step's op, hence its cache key
  const other = compilePlan(planBuild({ ...input, secretKeys: { token: 'scrypt:' + 'd'.repeat(64) } }), {
    baseConfig: {},
  });
  const digest = (c: typeof compiled) =>
    c.image.marshal().ops.find((o) => o.metadata.description?.['llb.customname']?.startsWith('build.run[0]'))
      ?.digest;
  assert.notEqual(digest(other), digest(compiled));
});

test('a --secret file that cannot be read is refused, used or not; a variable is looked up only when used', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-secret-files-'));
  dirs.push(dir);
  await writeFile(join(dir, 'token'), 'v1');
  await checkSecretFiles({ token: { file: join(dir, 'token') }, unset: { env: 'NOT_SET_ANYWHERE' } });
  await assert.rejects(
    checkSecretFiles({ token: { file: join(dir, 'token') }, x: { file: join(dir, 'absent') } }),
    (err: unknown) =>
      err instanceof CogError &&
      err.message === `--secret id=x,src=${join(dir, 'absent')}: no such file` &&
      /src= the path of a readable file/.test(err.hint ?? ''),
  );
  await assert.rejects(
    checkSecretFiles({ d: { file: dir } }),
    /--secret id=d,src=.*: a directory, not a file/,
  );
});

test('cog build refuses a missing --secret file before it builds, though no step mounts the secret', async () => {
  // the hello fixture mounts no secret; BUILDKIT_HOST points nowhere: refused before any daemon is asked
  const env = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock' };
  const out = await exec(join(repoRoot, 'bin', 'cog'), ['build', '--secret', 'id=x,src=/missing/file'], {
    cwd: join(repoRoot, 'fixtures', 'models', 'hello'),
    env,
  });
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, /^cog: error: --secret id=x,src=\/missing\/file: no such file$/m);
  assert.match(out.stderr, /^hint: give src= the path of a readable file/m);
});

test('a step mounts its secret optionally, as upstream: without --secret it runs without the file', () => {
  const compiled = compilePlan(planBuild(input), { baseConfig: {} });
  const step = compiled.image
    .marshal()
    .ops.find((o) => o.metadata.description?.['llb.customname']?.startsWith('build.run[0]'));
  const secretMounts = (step?.op.exec?.mounts ?? []).filter((m) => m.mountType === 1);
  assert.deepEqual(
    secretMounts.map((m) => [m.dest, m.secretOpt?.ID, m.secretOpt?.optional]),
    [['/run/secrets/token', 'token', true]],
  );
});

test('a step mounting a secret no --secret passes is warned of, naming the step, the secret and the flag', () => {
  const runs = [
    { command: 'echo a', mounts: [] },
    {
      command: 'pip download private-pkg',
      mounts: [
        { type: 'secret' as const, id: 'token', target: '/run/secrets/token' },
        { type: 'secret' as const, id: 'other', target: '/other' },
      ],
    },
  ];
  assert.deepEqual(unpassedSecretWarnings(runs, new Set(['other']), 'cog.yaml'), [
    'cog.yaml build.run[1] mounts the secret "token", which was not passed with --secret: the step runs without /run/secrets/token (pass it with --secret id=token,src=FILE or --secret id=token,env=VAR)',
  ]);
  assert.deepEqual(unpassedSecretWarnings(runs, new Set(['token', 'other']), 'cog.yaml'), []);
});

test('cog build warns of a mounted secret nobody passed before it asks the daemon', async () => {
  // BUILDKIT_HOST points nowhere: the warning comes from reading cog.yaml, before any connection
  const env = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock' };
  const out = await exec(join(repoRoot, 'bin', 'cog'), ['build'], {
    cwd: join(repoRoot, 'fixtures', 'models', 'build-run-secret'),
    env,
  });
  assert.match(
    out.stderr,
    /^cog: warning: cog\.yaml build\.run\[0\] mounts the secret "token", which was not passed with --secret: the step runs without \/run\/secrets\/token \(pass it with --secret id=token,src=FILE or --secret id=token,env=VAR\)$/m,
  );
});
