// The launcher `cog serve` runs the Cog server through (worker-sockets.ts), with a fake server in
// Python on this host: it starts the server again when setup failed on another server's worker sockets,
// and only then; signals reach the server and the launcher exits as it did.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { healthCheckUrl, launchedServerArgs } from '../../src/runtime/worker-sockets.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

const tempDir = tempDirsRemovedAfterTests();

/** A stand-in for coglet's server: its /health-check answers what FAKE_HEALTH says for this start. */
const fakeServer = String.raw`
import json, os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
state, port = sys.argv[1], int(sys.argv[2])
with open(state, "a") as f:
    f.write("%d\n" % os.getpid())
with open(state) as f:
    start = len(f.read().splitlines())
answers = json.loads(os.environ["FAKE_HEALTH"])
answer = answers[min(start, len(answers)) - 1]
if answer == "exit 3":
    sys.exit(3)
if answer == "SIGKILL":
    os.kill(os.getpid(), signal.SIGKILL)
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, lambda n, f: os._exit(0))
if os.environ.get("FAKE_STUBBORN_FIRST") and start == 1:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = HTTPServer(("127.0.0.1", port), Handler)
server.serve_forever()
`;
import { freePort } from '../support/servers.js';

const clash = {
  status: 'SETUP_FAILED',
  setup: { logs: 'failed to spawn worker: failed to create transport: Address already in use (os error 98)' },
};
const ready = { status: 'READY', setup: { logs: 'ok' } };
const realFailure = {
  status: 'SETUP_FAILED',
  setup: { logs: 'ValueError: Address already in use, says setup()' },
};

async function launch(answers: readonly unknown[], env: NodeJS.ProcessEnv = {}) {
  const dir = await tempDir('cogts-launcher-');
  const state = join(dir, 'starts');
  await writeFile(state, '');
  await writeFile(join(dir, 'server.py'), fakeServer);
  const port = await freePort();
  const url = healthCheckUrl('0.0.0.0', port);
  // the launcher runs as `python -c …`: this host's python3 here
  const [, ...rest] = launchedServerArgs(['python3', join(dir, 'server.py'), state, String(port)], url);
  const child = spawn('python3', rest, {
    env: { ...process.env, ...env, FAKE_HEALTH: JSON.stringify(answers) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const starts = async () => (await readFile(state, 'utf8')).split('\n').filter(Boolean).map(Number);
  const health = async (): Promise<unknown> => {
    try {
      return await (await fetch(url, { signal: AbortSignal.timeout(1000) })).json();
    } catch {
      return undefined;
    }
  };
  /** the launcher and every server it started: a failed test leaves none behind (they hold its pipes) */
  const kill = async () => {
    child.kill('SIGKILL');
    for (const pid of await starts()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // it ended already
      }
    }
  };
  return { child, exited, starts, health, kill, stderr: () => stderr };
}

async function until<T>(what: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await what();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the cog serve launcher (worker socket clashes)', () => {
  test('a setup failed on another server’s worker sockets starts the server again, at another pid', async () => {
    const run = await launch([clash, clash, ready]);
    try {
      assert.deepEqual(
        await until(run.health, (h) => (h as { status?: string } | undefined)?.status === 'READY'),
        ready,
      );
      const pids = await run.starts();
      assert.equal(pids.length, 3);
      assert.equal(new Set(pids).size, 3, `three pids: ${pids.join(' ')}`);
      assert.match(run.stderr(), /had the worker sockets' names; starting the server again at another pid/);
      run.child.kill('SIGTERM');
      // SIGTERM reached the server, which exited 0: so does the launcher
      assert.equal(await run.exited, 0, run.stderr());
    } finally {
      await run.kill();
    }
  });

  test('a clashed server that ignores SIGTERM is killed 10 s later, and started again', async () => {
    const run = await launch([clash, ready], { FAKE_STUBBORN_FIRST: '1' });
    try {
      const started = Date.now();
      assert.deepEqual(
        await until(run.health, (h) => (h as { status?: string } | undefined)?.status === 'READY', 40_000),
        ready,
      );
      assert.ok(Date.now() - started >= 9_000, 'the first server was given 10 s to end');
      const [first] = await run.starts();
      assert.throws(() => process.kill(first as number, 0), /ESRCH/, 'the first server is gone');
      run.child.kill('SIGTERM');
      assert.equal(await run.exited, 0, run.stderr());
    } finally {
      await run.kill();
    }
  });

  test('an HTTP(S)_PROXY in the env (a dead one here) does not take the health check: a clash is still seen', async () => {
    const dead = 'http://127.0.0.1:9';
    const proxied = { HTTP_PROXY: dead, http_proxy: dead, HTTPS_PROXY: dead, https_proxy: dead };
    const run = await launch([clash, ready], { ...proxied, NO_PROXY: '', no_proxy: '' });
    try {
      assert.deepEqual(
        await until(run.health, (h) => (h as { status?: string } | undefined)?.status === 'READY'),
        ready,
      );
      assert.equal((await run.starts()).length, 2, run.stderr());
      run.child.kill('SIGTERM');
      assert.equal(await run.exited, 0, run.stderr());
    } finally {
      await run.kill();
    }
  });

  test('any other setup failure stays as it is (one start), for the user to see', async () => {
    const run = await launch([realFailure, ready]);
    try {
      assert.deepEqual(await until(run.health, (h) => h !== undefined), realFailure);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal((await run.starts()).length, 1);
      assert.deepEqual(await run.health(), realFailure);
      assert.doesNotMatch(run.stderr(), /starting the server again/);
      run.child.kill('SIGINT');
      assert.equal(await run.exited, 0, run.stderr());
    } finally {
      await run.kill();
    }
  });

  test('the launcher exits with the server’s code', async () => {
    const run = await launch(['exit 3']);
    assert.equal(await run.exited, 3, run.stderr());
  });

  test('a server killed by SIGKILL (as by the OOM killer): the launcher ends by the same signal', async () => {
    const run = await launch(['SIGKILL']);
    const ended = new Promise<NodeJS.Signals | null>((resolve) =>
      run.child.on('close', (_code, signal) => resolve(signal)),
    );
    assert.equal(await run.exited, null, run.stderr());
    assert.equal(await ended, 'SIGKILL');
    assert.doesNotMatch(run.stderr(), /Traceback/);
  });

  test('clashes forever: the server is started again a few times, then its failure stays', async () => {
    const run = await launch([clash]);
    try {
      await until(run.starts, (pids) => pids.length >= 6);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal((await run.starts()).length, 6, 'the first start and 5 more');
      assert.deepEqual(await run.health(), clash);
      run.child.kill('SIGTERM');
      assert.equal(await run.exited, 0, run.stderr());
    } finally {
      await run.kill();
    }
  });
});

test('the health check is asked where the server binds (0.0.0.0 on the loopback address)', () => {
  assert.equal(healthCheckUrl('0.0.0.0', 5000), 'http://127.0.0.1:5000/health-check');
  assert.equal(healthCheckUrl('10.1.2.3', 80), 'http://10.1.2.3:80/health-check');
});
