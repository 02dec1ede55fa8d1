// A tcp:// buildkitd with mutual TLS, reached with buildctl-style flags; without a client certificate
// the connection fails quickly, naming the address.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { exec, execOk } from '../support/exec.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
let tb: Testbed;
let dir: string;
let daemon: ChildProcess | undefined;
let host: string;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** buildctl's (and cog's) flags for the CA and the client certificate made in before() */
function clientTlsFlags(): string[] {
  return [
    '--tlscacert',
    join(dir, 'ca.pem'),
    '--tlscert',
    join(dir, 'client.pem'),
    '--tlskey',
    join(dir, 'client.key'),
  ];
}

async function openssl(...args: string[]) {
  await execOk('openssl', args, { cwd: dir });
}

before(async () => {
  tb = await ensureTestbed();
  dir = await mkdtemp(join(tmpdir(), 'cogts-tls-'));
  // a CA, a server certificate for 127.0.0.1, and a client certificate
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=cogts-test-ca',
  );
  await writeFile(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const [name, extra] of [
    ['server', ['-extfile', 'san.cnf']],
    ['client', []],
  ] as const) {
    await openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    );
    await openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      ...extra,
    );
  }
  const port = await freePort();
  host = `tcp://127.0.0.1:${port}`;
  daemon = spawn(
    'buildkitd',
    [
      '--addr',
      host,
      '--root',
      join(dir, 'root'),
      '--tlscacert',
      join(dir, 'ca.pem'),
      '--tlscert',
      join(dir, 'server.pem'),
      '--tlskey',
      join(dir, 'server.key'),
    ],
    { env: tb.env, stdio: 'ignore' },
  );
  // ready when buildctl (with the client certificate) gets an answer
  const deadline = Date.now() + 30_000;
  for (;;) {
    const probe = await exec('buildctl', ['--addr', host, ...clientTlsFlags(), 'debug', 'workers'], {
      env: tb.env,
    });
    if (probe.code === 0) break;
    if (Date.now() > deadline) throw new Error(`the TLS buildkitd did not start: ${probe.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
});

after(async () => {
  if (daemon && daemon.exitCode === null) {
    const gone = new Promise((resolve) => daemon?.once('exit', resolve));
    daemon.kill('SIGTERM');
    await gone;
  }
  await rm(dir, { recursive: true, force: true });
});

test(
  'cog reaches a mutual-TLS buildkitd with --tlscacert/--tlscert/--tlskey',
  { timeout: 120_000 },
  async () => {
    const env = { ...tb.env, BUILDKIT_HOST: host };
    const out = await exec(
      cog,
      ['debug', 'solve', '--example', 'file-symlink', '--progress', 'quiet', ...clientTlsFlags()],
      { env },
    );
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, new RegExp(`cog: build [0-9a-z]{25} on ${host.replace(/[.]/g, '\\.')}`));
  },
);

test(
  'without a client certificate the connection fails within seconds, naming the address',
  { timeout: 60_000 },
  async () => {
    const env = { ...tb.env, BUILDKIT_HOST: host };
    const started = Date.now();
    const out = await exec(
      cog,
      ['debug', 'solve', '--example', 'file-symlink', '--tlscacert', join(dir, 'ca.pem')],
      { env },
    );
    assert.notEqual(out.code, 0);
    assert.ok(Date.now() - started < 15_000);
    assert.match(out.stderr, new RegExp(host.replace(/[.]/g, '\\.')));
  },
);

test(
  "a client certificate without --tlscacert checks the daemon's against NODE_EXTRA_CA_CERTS",
  { timeout: 120_000 },
  async () => {
    const clientOnly = ['--tlscert', join(dir, 'client.pem'), '--tlskey', join(dir, 'client.key')];
    const args = ['debug', 'solve', '--example', 'file-symlink', '--progress', 'quiet', ...clientOnly];
    const env: NodeJS.ProcessEnv = { ...tb.env, BUILDKIT_HOST: host };
    delete env.SSL_CERT_FILE;
    delete env.NODE_EXTRA_CA_CERTS;
    // Node's roots alone do not know the test CA
    const untrusted = await exec(cog, args, { env });
    assert.notEqual(untrusted.code, 0, untrusted.stderr);
    // bin/cog keeps the file out of Node's start-up; cog adds its certificates to this connection
    const trusted = await exec(cog, args, { env: { ...env, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') } });
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.match(trusted.stderr, new RegExp(`cog: build [0-9a-z]{25} on ${host.replace(/[.]/g, '\\.')}`));
  },
);

test('--tlscert without --tlskey is refused before connecting', async () => {
  const out = await exec(
    cog,
    ['debug', 'solve', '--example', 'file-symlink', '--tlscert', join(dir, 'client.pem')],
    {
      env: { ...tb.env, BUILDKIT_HOST: host },
    },
  );
  assert.equal(out.code, 1);
  assert.match(out.stderr, /--tlscert and --tlskey go together/);
});
