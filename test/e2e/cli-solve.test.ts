// `cog debug solve` drives our client from the CLI: push an image, cancel with Ctrl-C, start a private daemon.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
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

/** A private daemon's environment: its state and temporary files under `state`, no BUILDKIT_HOST. */
function privateDaemonEnv(state: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...tb.env, XDG_STATE_HOME: state, TMPDIR: state };
  delete env.BUILDKIT_HOST;
  return env;
}

/** What a private daemon can leave behind in `state`: a buildkitd on its root, its run dir, the pid file. */
async function leftBehind(state: string): Promise<string[]> {
  const root = join(state, 'cog-ts', 'buildkitd');
  const left: string[] = [];
  if (await processRunning(`buildkitd.*--root ${root}`)) left.push(`a buildkitd on ${root}`);
  left.push(...(await readdir(state)).filter((name) => name.startsWith('cog-buildkitd-')));
  if (existsSync(join(root, 'cog-ts.pid'))) left.push('cog-ts.pid');
  return left;
}

test(
  'a signal while the private buildkitd starts stops it and removes its files, whichever way cog ends',
  { timeout: 300_000 },
  async () => {
    const cases = [
      // no handler of the command's own: the signal ends cog
      { args: ['cache', 'du'], signals: ['SIGINT'], code: 130 },
      // the build's Ctrl-C handler cancels it
      { args: ['debug', 'solve', '--example', 'file-symlink'], signals: ['SIGTERM'], code: 143 },
      // a second Ctrl-C exits at once (process.exit)
      { args: ['debug', 'solve', '--example', 'file-symlink'], signals: ['SIGINT', 'SIGINT'], code: 130 },
    ] as const;
    for (const { args, signals, code } of cases) {
      const state = await mkdtemp(join(tmpdir(), 'cogts-autostart-signal-'));
      const env = privateDaemonEnv(state);
      try {
        const child = spawn(cog, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        // the status a shell reports: 128 + the signal's number when a signal ended it
        const exited = new Promise<number | null>((resolve) =>
          child.on('close', (c, s) => resolve(c ?? (s ? 128 + constants.signals[s] : null))),
        );
        await waitFor('the private daemon to start', async () => /started a private/.test(stderr), 60_000);
        for (const signal of signals) {
          child.kill(signal);
          await sleep(50);
        }
        assert.equal(await exited, code, `cog ${args.join(' ')}, ${signals.join(' then ')}:\n${stderr}`);
        assert.deepEqual(await leftBehind(state), [], `cog ${args.join(' ')}, ${signals.join(' then ')}`);
        // and the next command starts its own daemon on the same state
        const next = await exec(cog, ['cache', 'du'], { env });
        assert.equal(next.code, 0, next.stderr);
        assert.deepEqual(await leftBehind(state), []);
      } finally {
        await rm(state, { recursive: true, force: true });
      }
    }
  },
);

test(
  'a private buildkitd that cannot lock its state says so, without the stack trace after it',
  { timeout: 120_000 },
  async () => {
    const state = await mkdtemp(join(tmpdir(), 'cogts-autostart-locked-'));
    const root = join(state, 'cog-ts', 'buildkitd');
    // another buildkitd holds the state directory (as one an interrupted cog left running did)
    const holder = spawn('buildkitd', ['--addr', `unix://${join(state, 'holder.sock')}`, '--root', root], {
      env: tb.env,
      stdio: 'ignore',
    });
    try {
      await waitFor('the other buildkitd', async () => existsSync(join(state, 'holder.sock')), 60_000);
      const out = await exec(cog, ['cache', 'du'], { env: privateDaemonEnv(state) });
      assert.equal(out.code, 1, out.stderr);
      assert.match(
        out.stderr,
        /did not come up: it exited with code 1\nbuildkitd: could not lock .*buildkitd\.lock/,
      );
      assert.doesNotMatch(out.stderr, /main\.main|\.go:\d+/);
      assert.match(out.stderr, new RegExp(`hint: another buildkitd uses ${root}`));
    } finally {
      const gone = new Promise((resolve) => holder.once('exit', resolve));
      holder.kill('SIGTERM');
      await gone;
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
