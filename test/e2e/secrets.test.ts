// A secret mounted into a step is readable by the command and absent from the image and progress output.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BuildkitClient } from '../../src/buildkit/client.js';
import { secretsService } from '../../src/buildkit/secrets.js';
import { Session } from '../../src/buildkit/session.js';
import { solve } from '../../src/buildkit/solve.js';
import { image } from '../../src/llb/index.js';
import { exec, execOk } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const tempDir = tempDirsRemovedAfterTests();
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

let tb: Testbed;
let client: BuildkitClient;

before(async () => {
  tb = await ensureTestbed();
  client = await BuildkitClient.connect(tb.buildkitHost);
});

after(() => client.close());

test('secrets from a file and from env reach the step and nowhere else', { timeout: 300_000 }, async () => {
  const fileSecret = randomBytes(24).toString('hex');
  const envSecret = randomBytes(24).toString('hex');
  const dir = await mkdtemp(join(tmpdir(), 'cogts-secret-'));
  await writeFile(join(dir, 'token'), fileSecret);
  process.env.COGTS_TEST_ENV_SECRET = envSecret;

  const ref = `${tb.registry}/cogts-test/secrets:${Date.now().toString(36)}`;
  const built = image('python:3.11-slim')
    .run({
      // the step fails unless it reads both secrets' exact values (it is given only their hashes)
      shell: [
        `echo "${sha256(fileSecret)}  /run/secrets/token" | sha256sum -c`,
        `test "$(printf %s "$ENV_SECRET" | sha256sum | cut -d' ' -f1)" = ${sha256(envSecret)}`,
        'echo secrets-read > /proof',
      ].join(' && '),
      mounts: [{ type: 'secret', id: 'token', required: true }],
      secretEnv: { ENV_SECRET: { id: 'envtoken', required: true } },
      ignoreCache: true,
    })
    .root();
  const logs: string[] = [];
  const session = Session.start(client, [
    secretsService({ token: { file: join(dir, 'token') }, envtoken: { env: 'COGTS_TEST_ENV_SECRET' } }),
  ]);
  try {
    await solve(client, {
      definition: built.marshal().definition,
      session,
      exporters: [{ Type: 'image', Attrs: { name: ref, push: 'true', 'registry.insecure': 'true' } }],
      onStatus: (s) => {
        for (const v of s.vertexes ?? []) logs.push(v.name ?? '');
        for (const l of s.logs ?? []) logs.push(Buffer.from(l.msg ?? []).toString());
      },
    });
  } finally {
    session.close();
  }
  // not in progress output
  const progress = logs.join('\n');
  assert.ok(!progress.includes(fileSecret) && !progress.includes(envSecret));
  // not in the image: pull every layer and the config and search them
  const out = await mkdtemp(join(tmpdir(), 'cogts-secret-img-'));
  await execOk('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${out}`]);
  const found = await execOk('bash', [
    '-c',
    `for f in "${out}"/*; do (zcat -f "$f" 2>/dev/null || cat "$f"); done | grep -c -a -e "${fileSecret}" -e "${envSecret}" || true`,
  ]);
  assert.equal(found.stdout.trim(), '0');
  // the step ran to the end: its marker file is in a layer
  const proof = await execOk('bash', [
    '-c',
    `for f in "${out}"/*; do zcat -f "$f" 2>/dev/null; done | grep -a -c secrets-read || true`,
  ]);
  assert.notEqual(proof.stdout.trim(), '0');
});

test(
  'a required secret the session does not have fails the build, naming it',
  { timeout: 300_000 },
  async () => {
    const built = image('python:3.11-slim')
      .run({
        shell: 'cat /run/secrets/missing',
        mounts: [{ type: 'secret', id: 'missing', required: true }],
        ignoreCache: true,
      })
      .root();
    const session = Session.start(client, [secretsService({})]);
    try {
      await assert.rejects(solve(client, { definition: built.marshal().definition, session }), /missing/);
    } finally {
      session.close();
    }
  },
);

test(
  'a passed secret unreadable when the step asks fails naming its source and why, optional mount or not',
  { timeout: 300_000 },
  async () => {
    const dir = await tempDir('cogts-secret-unreadable-');
    const step = (id: string, required: boolean) =>
      image('python:3.11-slim')
        .run({
          shell: `echo ran-without-${id}`,
          mounts: [{ type: 'secret', id, required }],
          ignoreCache: true,
        })
        .root();
    const session = Session.start(client, [
      secretsService({ gone: { file: join(dir, 'gone') }, unset: { env: 'COGTS_TEST_UNSET_SECRET' } }, {}),
    ]);
    try {
      // not `secret gone: not found`, as though nobody had passed it
      await assert.rejects(
        solve(client, { definition: step('gone', true).marshal().definition, session }),
        (err: Error) =>
          err.message === `secret gone: cannot read the file ${join(dir, 'gone')}: no such file`,
      );
      // an optional mount does not run without a secret that was passed
      await assert.rejects(
        solve(client, { definition: step('unset', false).marshal().definition, session }),
        (err: Error) =>
          err.message === 'secret unset: environment variable COGTS_TEST_UNSET_SECRET is not set',
      );
    } finally {
      session.close();
    }
  },
);

test(
  'cog build --dockerfile with a secret whose variable is unset: the hint names the variable, not how to pass it',
  { timeout: 300_000 },
  async () => {
    // a Dockerfile's secret mounts are not checked before the build: the session finds the variable unset
    const project = join(await tempDir('cogts-secret-dockerfile-'), 'hello');
    await cp(join(repoRoot, 'fixtures', 'models', 'hello'), project, { recursive: true });
    await writeFile(
      join(project, 'Dockerfile'),
      'FROM python:3.11-slim\nRUN --mount=type=secret,id=tok,required=true test -s /run/secrets/tok\n',
    );
    const env: NodeJS.ProcessEnv = { ...tb.env, COG_IMAGE_STORE: join(project, '..', 'store') };
    delete env.COGTS_TEST_UNSET_SECRET;
    const out = await exec(
      join(repoRoot, 'bin', 'cog'),
      [
        'build',
        '-t',
        'secret-dockerfile:x',
        '--dockerfile',
        'Dockerfile',
        '--secret',
        'id=tok,env=COGTS_TEST_UNSET_SECRET',
      ],
      { cwd: project, env },
    );
    assert.equal(out.code, 1, out.stderr);
    assert.match(
      out.stderr,
      /^cog: error: secret tok: environment variable COGTS_TEST_UNSET_SECRET is not set$/m,
    );
    assert.match(
      out.stderr,
      /^hint: .*"tok", which was passed with --secret from the variable COGTS_TEST_UNSET_SECRET, but COGTS_TEST_UNSET_SECRET is not set/m,
    );
  },
);
