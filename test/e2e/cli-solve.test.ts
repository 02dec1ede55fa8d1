// `cog debug solve` drives our client from the CLI: push an image, cancel with Ctrl-C, start a private daemon.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { codec } from '../../src/proto/schema.js';
import { image } from '../../src/llb/index.js';
import { exec, execOk } from '../support/exec.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
let tb: Testbed;

before(async () => {
  tb = await ensureTestbed();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const processRunning = async (pattern: string) => (await exec('pgrep', ['-f', pattern])).code === 0;

test('debug solve pushes an image and prints its digest', { timeout: 300_000 }, async () => {
  const ref = `${tb.registry}/cogts-test/cli-solve:${Date.now().toString(36)}`;
  const dir = await mkdtemp(join(tmpdir(), 'cogts-cli-solve-'));
  const metadata = join(dir, 'metadata.json');
  const out = await execOk(
    cog,
    [
      'debug',
      'solve',
      '--example',
      'file-mkdir-mkfile-chain',
      '--metadata-file',
      metadata,
      '-o',
      `type=image,name=${ref},push=true,registry.insecure=true`,
    ],
    { env: tb.env },
  );
  const digest = out.stdout.trim();
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  assert.match(out.stderr, /cog: build [0-9a-z]{25} on unix:\/\//);
  const inspected = JSON.parse(
    (await execOk('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).stdout,
  ) as { Digest: string };
  assert.equal(inspected.Digest, digest);
  await rm(dir, { recursive: true, force: true });
});

test('debug solve rejects bad flags with a hint', async () => {
  const noInput = await exec(cog, ['debug', 'solve'], { env: tb.env });
  assert.equal(noInput.code, 1);
  assert.match(noInput.stderr, /exactly one of --example NAME or --llb FILE/);
  const badOutput = await exec(cog, ['debug', 'solve', '--example', 'file-symlink', '-o', 'type=zip'], {
    env: tb.env,
  });
  assert.match(badOutput.stderr, /--output "type=zip": type must be one of image, oci, docker, tar, local/);
  const notLlb = await exec(cog, ['debug', 'solve', '--llb', '-'], { env: tb.env, input: 'not protobuf' });
  assert.equal(notLlb.code, 1);
  assert.match(notLlb.stderr, /--llb -: /);
});

test(
  'Ctrl-C during a long step exits within 2 s and leaves no running build',
  { timeout: 300_000 },
  async (t) => {
    // a unique sleep length lets us find the step's process on the host
    const seconds = 3000 + Math.floor(Math.random() * 5000);
    const definition = image('python:3.11-slim')
      .run({ shell: `echo long-step && sleep ${seconds}`, ignoreCache: true })
      .root()
      .marshal().definition;
    const dir = await mkdtemp(join(tmpdir(), 'cogts-ctrlc-'));
    const llbFile = join(dir, 'long.llb');
    await writeFile(llbFile, codec('pb.Definition').encode(definition));

    const child = spawn(cog, ['debug', 'solve', '--llb', llbFile], {
      env: tb.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(
        `the step's "sleep ${seconds}" to start`,
        () => processRunning(`sleep ${seconds}`),
        120_000,
      );
      const buildRef = /cog: build ([0-9a-z]{25})/.exec(stderr)?.[1];
      assert.ok(buildRef, `the CLI names its build on stderr:\n${stderr}`);

      // while the step runs the daemon lists the build as STARTED
      const running = await execOk('buildctl', ['debug', 'histories'], { env: tb.env });
      assert.match(running.stdout, new RegExp(`^STARTED\\s+${buildRef}`, 'm'));

      const interruptedAt = Date.now();
      child.kill('SIGINT');
      const code = await exited;
      const tookMs = Date.now() - interruptedAt;
      t.diagnostic(`exited ${tookMs} ms after SIGINT`);
      assert.ok(tookMs < 2000, `exited ${tookMs} ms after SIGINT`);
      assert.equal(code, 130);
      assert.match(stderr, /interrupted \(SIGINT\): the build was cancelled/);

      // the daemon killed the step and closed the build record
      await waitFor('the step to be killed', async () => !(await processRunning(`sleep ${seconds}`)), 10_000);
      await waitFor(
        'the build record to leave RUNNING',
        async () => {
          const histories = await execOk('buildctl', ['debug', 'histories'], { env: tb.env });
          const line = histories.stdout.split('\n').find((l) => l.includes(buildRef));
          return line?.startsWith('COMPLETE') === true;
        },
        10_000,
      );
    } finally {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'with no BUILDKIT_HOST a private buildkitd from PATH runs the build and is stopped after',
  { timeout: 300_000 },
  async () => {
    const state = await mkdtemp(join(tmpdir(), 'cogts-autostart-'));
    const env: NodeJS.ProcessEnv = { ...tb.env, XDG_STATE_HOME: state, TMPDIR: state };
    delete env.BUILDKIT_HOST;
    try {
      const out = await exec(cog, ['debug', 'solve', '--example', 'file-symlink'], { env });
      assert.equal(out.code, 0, out.stderr);
      assert.match(
        out.stderr,
        /no BUILDKIT_HOST and no buildkitd at unix:\/\/\/run\/buildkit\/buildkitd\.sock; started a private buildkitd/,
      );
      const root = join(state, 'cog-ts', 'buildkitd');
      assert.match(out.stderr, new RegExp(`state in ${root}`));
      // stopped afterwards: no buildkitd with that root is left
      assert.equal(await processRunning(`buildkitd.*--root ${root}`), false);
    } finally {
      await rm(state, { recursive: true, force: true });
    }
  },
);

test('with no BUILDKIT_HOST and no buildkitd on PATH the error says how to install it', async () => {
  const env: NodeJS.ProcessEnv = { ...tb.env, PATH: '/usr/bin:/bin', XDG_STATE_HOME: tmpdir() };
  delete env.BUILDKIT_HOST;
  const started = Date.now();
  const out = await exec(cog, ['debug', 'solve', '--example', 'file-symlink'], { env });
  assert.equal(out.code, 1);
  assert.ok(Date.now() - started < 10_000);
  assert.match(out.stderr, /buildkitd is not on PATH/);
  assert.match(out.stderr, /hint: install BuildKit/);
});

test(
  'debug solve exports to a local directory and an OCI tarball in one solve',
  { timeout: 300_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cogts-cli-export-'));
    try {
      await execOk(
        cog,
        [
          'debug',
          'solve',
          '--example',
          'file-mkdir-mkfile-chain',
          '--progress',
          'quiet',
          '-o',
          `type=local,dest=${join(dir, 'out')}`,
          '-o',
          `type=oci,dest=${join(dir, 'image.tar')}`,
        ],
        { env: tb.env },
      );
      const { readFile } = await import('node:fs/promises');
      assert.equal(await readFile(join(dir, 'out', 'a', 'b', 'c.txt'), 'utf8'), 'hello');
      const inspected = JSON.parse(
        (await execOk('skopeo', ['inspect', `oci-archive:${join(dir, 'image.tar')}`])).stdout,
      ) as { Layers: string[] };
      assert.equal(inspected.Layers.length, 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
