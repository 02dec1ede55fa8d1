// The session's Secrets service, and how a step's secret failure is explained: a secret nobody passed
// is told apart from one passed but unreadable when the step asked (its variable unset, its file gone).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { BuildkitError } from '../../src/buildkit/errors.js';
import type { SecretSource } from '../../src/buildkit/secret-flags.js';
import { explainMissingSecret, secretsService } from '../../src/buildkit/secrets.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

type Answer = { err: grpc.ServiceError | null; value?: unknown };

/** What the service answers the daemon's GetSecret for `id`. */
function getSecret(
  secrets: Record<string, SecretSource>,
  env: NodeJS.ProcessEnv,
  id: string,
): Promise<Answer> {
  const service = secretsService(secrets, env);
  const handler = service.implementation.GetSecret as (
    call: { request: { ID: string } },
    callback: (err: grpc.ServiceError | null, value?: unknown) => void,
  ) => void;
  return new Promise((resolve) => handler({ request: { ID: id } }, (err, value) => resolve({ err, value })));
}

test('a secret the session has is served; one it lacks is NOT_FOUND', async () => {
  const served = await getSecret({ t: { env: 'TOKEN' } }, { TOKEN: 'v1' }, 't');
  assert.equal(served.err, null);
  assert.equal(Buffer.from((served.value as { data: Uint8Array }).data).toString(), 'v1');
  const lacking = await getSecret({}, {}, 'nobody');
  assert.equal(lacking.err?.code, grpc.status.NOT_FOUND);
});

test('a passed secret that cannot be read is not NOT_FOUND: the answer names its source and why', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-secret-session-'));
  dirs.push(dir);
  const unset = await getSecret({ t: { env: 'COGTS_UNSET' } }, {}, 't');
  assert.equal(unset.err?.code, grpc.status.FAILED_PRECONDITION);
  assert.equal(unset.err?.details, 'secret t: environment variable COGTS_UNSET is not set');
  const gone = await getSecret({ t: { file: join(dir, 'gone') } }, {}, 't');
  assert.equal(gone.err?.code, grpc.status.FAILED_PRECONDITION);
  assert.equal(gone.err?.details, `secret t: cannot read the file ${join(dir, 'gone')}: no such file`);
  await writeFile(join(dir, 'token'), 'v1');
  const served = await getSecret({ t: { file: join(dir, 'token') } }, {}, 't');
  assert.equal(served.err, null);
});

const hintOf = (message: string, withFlag = true) => {
  const explained = explainMissingSecret(new BuildkitError(message), withFlag);
  assert.ok(explained instanceof BuildkitError);
  assert.equal(explained.message, message);
  return explained.hint ?? '';
};

test('a secret nobody passed: the hint says how to pass it', () => {
  assert.match(
    hintOf('secret token: not found'),
    /pass it with --secret id=token,src=FILE or --secret id=token,env=VAR$/,
  );
  assert.match(hintOf('secret token: not found', false), /`cog build --secret id=token,src=FILE -t NAME`/);
});

test('a passed secret whose variable is unset: the hint names the variable, not how to pass it', () => {
  const hint = hintOf('secret token: environment variable HF_TOKEN is not set');
  assert.match(
    hint,
    /"token", which was passed with --secret from the variable HF_TOKEN, but HF_TOKEN is not set/,
  );
  assert.match(hint, /export HF_TOKEN=/);
  assert.doesNotMatch(hint, /pass it with/);
});

test('a passed secret whose file could not be read: the hint names the file and why', () => {
  const hint = hintOf('secret token: cannot read the file /home/me/.token: not readable');
  assert.match(
    hint,
    /"token", which was passed with --secret from the file \/home\/me\/\.token, but .* could not be read \(not readable\)/,
  );
  assert.doesNotMatch(hint, /pass it with/);
});

test('other errors, and errors that have a hint, are left alone', () => {
  const other = new Error('failed to solve: exit code 1');
  assert.equal(explainMissingSecret(other, true), other);
  const hinted = new BuildkitError('secret token: not found', { hint: 'already explained' });
  assert.equal(explainMissingSecret(hinted, true), hinted);
});
