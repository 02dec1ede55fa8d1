// `--secret` flags: buildx's syntax, and `id=NAME` alone meaning the variable NAME when it is set, else
// the file NAME (buildx's secrets provider decides so).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { checkSecretFiles, parseSecretFlag, readSecret } from '../../src/buildkit/secret-flags.js';
import { CogError } from '../../src/errors.js';
import { exec } from '../support/exec.js';
import { repoRoot } from '../support/testbed.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('src= and env= name the source; type=env takes src= as the variable', () => {
  assert.deepEqual(parseSecretFlag('id=a,src=/f', { a: 'set' }), ['a', { file: '/f' }]);
  assert.deepEqual(parseSecretFlag('id=a,source=/f', {}), ['a', { file: '/f' }]);
  assert.deepEqual(parseSecretFlag('id=a,env=V', {}), ['a', { env: 'V' }]);
  assert.deepEqual(parseSecretFlag('type=env,id=a,src=V', {}), ['a', { env: 'V' }]);
  assert.deepEqual(parseSecretFlag('type=env,id=a', {}), ['a', { env: 'a' }]);
  assert.deepEqual(parseSecretFlag('type=file,id=a', { a: 'set' }), ['a', { file: 'a' }]);
});

test('an unknown key or type, or a field without =, is refused as buildx refuses it', () => {
  const refused = (value: string, problem: string) =>
    assert.throws(
      () => parseSecretFlag(value, { token: 'set' }),
      (err: unknown) =>
        err instanceof CogError &&
        err.message === `--secret "${value}": ${problem}` &&
        /the keys are id, src \(or source\), env and type/.test(err.hint ?? ''),
      value,
    );
  // a misspelt src= used to fall back to the variable or file named like the id
  refused('id=token,scr=/tmp/tok', 'unknown key "scr"');
  refused('id=token,src=/f,mode=0400', 'unknown key "mode"');
  refused('token', '"token" is not KEY=VALUE');
  assert.throws(
    () => parseSecretFlag('type=bogus,id=token,src=/f', {}),
    /^CogError: --secret "type=bogus,id=token,src=\/f": type "bogus" is not file or env$/,
  );
  assert.deepEqual(parseSecretFlag('ID=a,SRC=/f', {}), ['a', { file: '/f' }], 'keys in any case, as buildx');
});

test('src=PATH without id= takes the file name as the id (as buildx does)', () => {
  assert.deepEqual(parseSecretFlag('src=/run/keys/token.txt', {}), [
    'token.txt',
    { file: '/run/keys/token.txt' },
  ]);
  assert.deepEqual(parseSecretFlag('source=keys/hf', {}), ['hf', { file: 'keys/hf' }]);
  assert.deepEqual(parseSecretFlag('type=file,src=./a/b.pem', {}), ['b.pem', { file: './a/b.pem' }]);
});

test('a --secret with neither id= nor src= is refused, naming the value and the accepted forms', () => {
  for (const value of ['env=HF_TOKEN', 'type=env,src=HF_TOKEN', 'src=/', 'id=']) {
    assert.throws(
      () => parseSecretFlag(value, {}),
      (err: unknown) =>
        err instanceof CogError &&
        err.message === `--secret "${value}" has no id` &&
        /id=NAME,src=PATH/.test(err.hint ?? '') &&
        /src=PATH \(the id is the file name\)/.test(err.hint ?? ''),
      value,
    );
  }
  assert.throws(() => parseSecretFlag('src=/f,env=V', {}), /--secret f: give src or env, not both/);
});

test('id=NAME alone is the variable NAME when it is set (even empty), else the file NAME', () => {
  assert.deepEqual(parseSecretFlag('id=HF_TOKEN', { HF_TOKEN: 'hf_x' }), ['HF_TOKEN', { env: 'HF_TOKEN' }]);
  assert.deepEqual(parseSecretFlag('id=HF_TOKEN', { HF_TOKEN: '' }), ['HF_TOKEN', { env: 'HF_TOKEN' }]);
  assert.deepEqual(parseSecretFlag('id=HF_TOKEN', { OTHER: 'x' }), [
    'HF_TOKEN',
    { file: 'HF_TOKEN', implied: true },
  ]);
});

test('id=NAME with the variable set is read from it, and no file NAME is asked for', async () => {
  const [id, source] = parseSecretFlag('id=COGTS_NO_SUCH_FILE_TOKEN', { COGTS_NO_SUCH_FILE_TOKEN: 'v1' });
  await checkSecretFiles({ [id]: source });
  assert.equal(
    Buffer.from(await readSecret(id, source, { COGTS_NO_SUCH_FILE_TOKEN: 'v1' })).toString(),
    'v1',
  );
});

test('id=NAME with neither a variable nor a file NAME is refused, saying both were looked for', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-secret-flags-'));
  dirs.push(dir);
  const name = join(dir, 'token');
  await assert.rejects(
    checkSecretFiles({ [name]: { file: name, implied: true } }),
    (err: unknown) =>
      err instanceof CogError &&
      err.message ===
        `--secret id=${name}: no variable ${name} is set, and the file ${name} cannot be read (no such file)` &&
      /the variable .* if it is set, else the file/.test(err.hint ?? ''),
  );
  await writeFile(name, 'v1');
  await checkSecretFiles({ [name]: { file: name, implied: true } });
});

test('cog build --secret id=NAME takes $NAME when set; without it, and no file NAME, it is refused', async () => {
  // BUILDKIT_HOST points nowhere: a flag that passes its checks fails later, connecting to the daemon
  const cwd = join(repoRoot, 'fixtures', 'models', 'hello');
  const env: NodeJS.ProcessEnv = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock' };
  delete env.COGTS_TEST_IMPLIED_SECRET;
  const args = ['build', '--secret', 'id=COGTS_TEST_IMPLIED_SECRET'];
  const unset = await exec(join(repoRoot, 'bin', 'cog'), args, { cwd, env });
  assert.equal(unset.code, 1, unset.stderr);
  assert.match(
    unset.stderr,
    /^cog: error: --secret id=COGTS_TEST_IMPLIED_SECRET: no variable COGTS_TEST_IMPLIED_SECRET is set, and the file COGTS_TEST_IMPLIED_SECRET cannot be read \(no such file\)$/m,
  );
  const set = await exec(join(repoRoot, 'bin', 'cog'), args, {
    cwd,
    env: { ...env, COGTS_TEST_IMPLIED_SECRET: 'v1' },
  });
  assert.equal(set.code, 1, set.stderr);
  assert.doesNotMatch(set.stderr, /--secret/);
  assert.match(set.stderr, /nonexistent\/buildkitd\.sock/);
});
