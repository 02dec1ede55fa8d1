// `cog serve` and `cog exec` without Docker: the model's environment runs in a BuildKit gateway
// container on the daemon host's network. serve answers HTTP on the host port and stops cleanly on
// Ctrl-C; exec passes stdin, env and the exit code through.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec, execOk } from '../support/exec.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { freePort, freePorts } from '../support/servers.js';

const cog = join(repoRoot, 'bin', 'cog');
const hello = join(repoRoot, 'fixtures', 'models', 'hello');
let tb: Testbed;
let dir: string;

const tempDir = tempDirsRemovedAfterTests();

before(async () => {
  tb = await ensureTestbed();
  dir = await tempDir('cogts-serve-');
});

/** pids of Cog servers listening on `port` (found by the PORT in their environment). */
async function serversOnPort(port: number): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      if (!cmdline.includes('cog.server.http')) continue;
      const environ = (await readFile(`/proc/${entry}/environ`, 'utf8')).split('\0');
      if (environ.includes(`PORT=${port}`)) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

interface Served {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function startServe(args: string[], cwd: string): Served {
  const child = spawn(cog, ['serve', ...args], { env: tb.env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitReady(base: string, served: Served, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (served.child.exitCode !== null) throw new Error(`cog serve exited early:\n${served.output()}`);
    try {
      const response = await fetch(`${base}/health-check`, { signal: AbortSignal.timeout(1000) });
      const body = (await response.json()) as { status?: string; setup?: { logs?: string } };
      if (body.status === 'READY') return;
      // a clash of worker sockets with another server is what the launcher starts the server again on
      const clash = /failed to create transport.*Address already in use/s.test(body.setup?.logs ?? '');
      if (body.status === 'SETUP_FAILED' && !clash) throw new Error(`setup failed:\n${JSON.stringify(body)}`);
    } catch (err) {
      if ((err as Error).message.startsWith('setup failed')) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no READY within ${timeoutMs} ms:\n${served.output()}`);
}

async function checkServeAndStop(served: Served, port: number): Promise<void> {
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(base, served, 300_000);
    const openapi = (await (await fetch(`${base}/openapi.json`)).json()) as { paths?: object };
    assert.ok(openapi.paths && '/predictions' in openapi.paths, JSON.stringify(openapi).slice(0, 300));
    const response = await fetch(`${base}/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { name: 'curl' } }),
    });
    assert.equal(response.status, 200);
    const prediction = (await response.json()) as { status?: string; output?: unknown };
    assert.equal(prediction.status, 'succeeded');
    assert.equal(prediction.output, 'hello curl');
    assert.equal((await serversOnPort(port)).length > 0, true, 'the server runs on the daemon host');
  } catch (err) {
    served.child.kill('SIGKILL');
    throw err;
  }
  const stopped = Date.now();
  served.child.kill('SIGINT');
  const code = await Promise.race([
    served.exited,
    new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000)),
  ]);
  if (code === 'timeout') served.child.kill('SIGKILL');
  assert.notEqual(code, 'timeout', `cog serve did not stop within 20 s:\n${served.output()}`);
  // upstream: Ctrl-C is a clean exit
  assert.equal(code, 0, served.output());
  assert.match(served.output(), /SIGINT: stopping the model/, 'the message says what Ctrl-C does here');
  assert.doesNotMatch(served.output(), /cancelling the build/);
  process.stderr.write(`# cog serve: stopped ${Date.now() - stopped} ms after SIGINT\n`);
  await assert.rejects(fetch(`${base}/health-check`, { signal: AbortSignal.timeout(2000) }));
  assert.deepEqual(await serversOnPort(port), []);
}

test('cog serve builds the project and serves its HTTP API until Ctrl-C', { timeout: 600_000 }, async () => {
  const port = await freePort();
  const started = Date.now();
  const served = startServe(['-p', String(port)], hello);
  await waitReady(`http://127.0.0.1:${port}`, served, 300_000);
  process.stderr.write(`# cog serve (hello, dev mode): READY after ${Date.now() - started} ms\n`);
  assert.match(served.output(), new RegExp(`Serving at http://127\\.0\\.0\\.1:${port}`));
  await checkServeAndStop(served, port);
  // into pipes, the server's log has no colour codes (coglet wrote them whatever its output was)
  assert.match(served.output(), /coglet/, 'the server logged');
  assert.doesNotMatch(served.output(), new RegExp(String.fromCharCode(27)), 'no escape codes');
});

test('cog serve IMAGE serves a pushed image', { timeout: 600_000 }, async () => {
  const ref = `${tb.registry}/cogts-test/serve-hello:${Date.now().toString(36)}`;
  await execOk(cog, ['build', '-t', ref, '--push', '--progress', 'quiet'], { env: tb.env, cwd: hello });
  const port = await freePort();
  const served = startServe([ref, '-p', String(port)], dir);
  await checkServeAndStop(served, port);
});

test(
  'cog serve --host localhost binds 127.0.0.1; POST /shutdown ends it cleanly (exit 0)',
  { timeout: 600_000 },
  async () => {
    const port = await freePort();
    const served = startServe(['--host', 'localhost', '-p', String(port)], hello);
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitReady(base, served, 300_000);
      assert.match(served.output(), new RegExp(`Serving at http://127\\.0\\.0\\.1:${port}`));
      const response = await fetch(`${base}/shutdown`, { method: 'POST' });
      assert.equal(response.status, 200);
    } catch (err) {
      served.child.kill('SIGKILL');
      throw err;
    }
    const code = await Promise.race([
      served.exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000)),
    ]);
    if (code === 'timeout') served.child.kill('SIGKILL');
    assert.equal(code, 0, served.output());
    assert.match(served.output(), /^cog: the model server stopped$/m);
    assert.deepEqual(await serversOnPort(port), []);
  },
);

test(
  'cog serve runs predictions of an @cog.concurrent(max=4) async predictor at the same time (it took one at a time, answering 409)',
  { timeout: 600_000 },
  async () => {
    const project = await tempDir('cogts-serve-concurrent-');
    await writeFile(
      join(project, 'cog.yaml'),
      'build:\n  python_version: "3.11"\nrun: predict.py:Predictor\n',
    );
    await writeFile(
      join(project, 'predict.py'),
      [
        'import asyncio',
        'import cog',
        'from cog import BasePredictor',
        '',
        '',
        'class Predictor(BasePredictor):',
        '    @cog.concurrent(max=4)',
        '    async def predict(self, s: float = 2.0) -> str:',
        '        await asyncio.sleep(s)',
        '        return "done"',
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const served = startServe(['-p', String(port)], project);
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitReady(base, served, 300_000);
      const [pid] = await serversOnPort(port);
      assert.ok(pid !== undefined);
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
      assert.ok(environ.includes('COG_MAX_CONCURRENCY=4'), environ.join(' '));
      // 250 ms apart, each running 2 s: all three at once in the server, never arriving together —
      // coglet's slot pool only tries its lock (permit/pool.rs, try_lock), so two requests in the same
      // microsecond can get 409 "At capacity" with slots free (1 run in ~15 here). A server taking one
      // at a time still answers the second 409.
      const started = Date.now();
      const responses = await Promise.all(
        [0, 1, 2].map(async (i) => {
          await new Promise((resolve) => setTimeout(resolve, i * 250));
          return fetch(`${base}/predictions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ input: { s: 2 } }),
          });
        }),
      );
      const took = Date.now() - started;
      const answers = await Promise.all(
        responses.map(async (r) => ({ status: r.status, body: await r.text() })),
      );
      const seen = `${JSON.stringify(answers)}\n${served.output()}`;
      assert.deepEqual(
        answers.map((a) => a.status),
        [200, 200, 200],
        seen,
      );
      for (const a of answers)
        assert.equal((JSON.parse(a.body) as { output?: unknown }).output, 'done', seen);
      // one after another would take 6 s and more
      assert.ok(took < 5000, `the three predictions took ${took} ms: not at the same time\n${seen}`);
    } finally {
      served.child.kill('SIGINT');
      const code = await Promise.race([
        served.exited,
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000)),
      ]);
      if (code === 'timeout') served.child.kill('SIGKILL');
    }
  },
);

test(
  'two cog serves of one image at once both answer predictions (their servers named their worker sockets alike: SETUP_FAILED)',
  { timeout: 600_000 },
  async () => {
    const image = `cogts-serve-twice-${Date.now().toString(36)}`;
    await execOk(cog, ['build', '-t', image, '--progress', 'quiet'], { env: tb.env, cwd: hello });
    const ports = await freePorts(2);
    // both at once: each server starts at the same pid in its container, on one network namespace
    const served = ports.map((port) => startServe([image, '-p', String(port)], dir));
    try {
      await Promise.all(
        served.map(async (one, i) => {
          const base = `http://127.0.0.1:${ports[i]}`;
          await waitReady(base, one, 300_000);
          const response = await fetch(`${base}/predictions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ input: { name: `twice ${i}` } }),
          });
          assert.equal(response.status, 200, one.output());
          assert.equal(((await response.json()) as { output?: unknown }).output, `hello twice ${i}`);
        }),
      );
    } finally {
      for (const one of served) one.child.kill('SIGINT');
      const codes = await Promise.race([
        Promise.all(served.map((one) => one.exited)),
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000)),
      ]);
      if (codes === 'timeout') for (const one of served) one.child.kill('SIGKILL');
      await exec(cog, ['image', 'rm', image], { env: tb.env, cwd: dir });
    }
  },
);

test('cog serve fails clearly when the port is taken', { timeout: 600_000 }, async () => {
  // it hangs up on the launcher's health checks: a connection it kept would keep close() waiting
  const blocker = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const address = blocker.address();
  const port = address && typeof address !== 'string' ? address.port : 0;
  try {
    const out = await exec(cog, ['serve', '-p', String(port)], { env: tb.env, cwd: hello });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /the model server exited with code/);
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

test('cog exec passes stdin, env and the exit code through', { timeout: 600_000 }, async () => {
  const script = [
    'import os, sys',
    'data = sys.stdin.read()',
    'print(data.upper(), end="")',
    'print("FOO=" + os.environ.get("FOO", ""))',
    // -e NAME alone passes the shell's value, as docker run does; a NAME the shell lacks stays unset
    'print("FROM_SHELL=" + os.environ.get("FROM_SHELL", "unset"))',
    'print("NOT_IN_SHELL=" + os.environ.get("NOT_IN_SHELL", "unset"))',
    'print("cwd=" + os.getcwd())',
    'print(open("/src/predict.py").readline().strip())',
    'sys.exit(3)',
  ].join('\n');
  const args = ['-e', 'FOO=bar', '-e', 'FROM_SHELL', '-e', 'NOT_IN_SHELL'];
  const out = await exec(cog, ['exec', ...args, 'python', '-c', script], {
    env: { ...tb.env, FROM_SHELL: 'shell value', NOT_IN_SHELL: undefined },
    cwd: hello,
    input: 'quiet words\nsecond line\n',
  });
  assert.equal(out.code, 3, out.stderr);
  assert.equal(
    out.stdout,
    'QUIET WORDS\nSECOND LINE\nFOO=bar\nFROM_SHELL=shell value\nNOT_IN_SHELL=unset\n' +
      'cwd=/src\nfrom cog import BasePredictor, Input\n',
  );
  assert.doesNotMatch(out.stderr, /error/i);
});

test(
  'cog exec runs in a project whose predictor the schema reader refuses, with a warning',
  { timeout: 600_000 },
  async () => {
    const project = await tempDir('cogts-exec-no-schema-');
    await cp(hello, project, { recursive: true });
    await writeFile(
      join(project, 'predict.py'),
      [
        'from cog import BasePredictor',
        '',
        '',
        'class Predictor(BasePredictor):',
        '    def predict(self, names: set) -> str:',
        '        return ",".join(sorted(names))',
        '',
      ].join('\n'),
    );
    const build = await exec(cog, ['build', '--progress', 'quiet'], { env: tb.env, cwd: project });
    assert.notEqual(build.code, 0, 'cog build refuses the predictor');
    assert.match(build.stderr, /predict\.py:5: .*set/);

    const out = await exec(
      cog,
      ['exec', 'python', '-c', 'print(open("/src/predict.py").read().count("set"))'],
      {
        env: tb.env,
        cwd: project,
      },
    );
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, '1\n');
    assert.match(out.stderr, /warning: no OpenAPI schema: predict\.py:5: .*going on without one/);
  },
);

test(
  'cog exec: options after the command are the command’s; -p is accepted',
  { timeout: 600_000 },
  async () => {
    const out = await execOk(
      cog,
      ['exec', '-p', '8899', 'python', '-c', 'import sys; print(sys.argv[1:])', '-e', 'x'],
      {
        env: tb.env,
        cwd: hello,
      },
    );
    assert.equal(out.stdout, "['-e', 'x']\n");
    assert.match(out.stderr, /8899/);
  },
);

/** `cog exec python -c SCRIPT` in hello, once the script printed "up"; its output so far and its end. */
async function execUntilUp(script: string) {
  const child = spawn(cog, ['exec', 'python', '-c', script], {
    env: tb.env,
    cwd: hello,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('up')) resolve();
    });
    child.on('close', () => reject(new Error(`exited before running:\n${stderr}`)));
  });
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

test('cog exec: Ctrl-C reaches the command', { timeout: 600_000 }, async () => {
  const run = await execUntilUp('import time; print("up", flush=True); time.sleep(60)');
  const interrupted = Date.now();
  run.child.kill('SIGINT');
  const code = await run.exited;
  assert.ok(Date.now() - interrupted < 15_000, 'stopped promptly');
  assert.equal(code, 130, run.stderr());
});

test(
  'cog exec: SIGTERM reaches the command as SIGTERM, and cog exits with its status',
  { timeout: 600_000 },
  async () => {
    const script = [
      'import signal, sys, time',
      'signal.signal(signal.SIGTERM, lambda n, f: (print("got", signal.Signals(n).name, flush=True), sys.exit(143)))',
      'print("up", flush=True)',
      'time.sleep(60)',
    ].join('\n');
    const run = await execUntilUp(script);
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 143, run.stderr());
    assert.match(run.stdout(), /got SIGTERM/);
    assert.match(run.stderr(), /SIGTERM: passing it on to the command/);
    assert.doesNotMatch(run.stderr(), /stopping the model/);
  },
);
