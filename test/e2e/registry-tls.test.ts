// `cog push` and `cog inspect` over HTTPS: a registry with a certificate from a private CA, on this
// machine's non-loopback address (loopback registries are asked over plain HTTP first). Without trust in
// the CA the push fails naming the certificate problem and SSL_CERT_FILE; with SSL_CERT_FILE it lands,
// and skopeo (Go's TLS, given the same CA) reads back the same digest. Through HTTPS_PROXY, the TLS
// inside the proxy's tunnel trusts the same CA, and only it.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startConnectProxy } from '../support/connect-proxy.js';
import { type ExecResult, exec, execOk } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const hello = join(repoRoot, 'fixtures', 'models', 'hello');
const tempDir = tempDirsRemovedAfterTests();
const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
let tb: Testbed;
let dir: string;
let registry: string;
let loopback: string;
let daemon: ChildProcess | undefined;

/** The first IPv4 address of this machine that is not loopback. */
function externalIpv4(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('this test needs a non-loopback IPv4 address (loopback registries are plain HTTP)');
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, host, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
    server.once('error', reject);
  });
}

/** GET https://registry/v2/ trusting only our CA: the status code, or undefined if it is not up yet. */
async function ping(ca: string): Promise<number | undefined> {
  return await new Promise((resolve) => {
    const req = request(`https://${registry}/v2/`, { ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.once('error', () => resolve(undefined));
    req.end();
  });
}

before(async () => {
  tb = await ensureTestbed();
  dir = await tempDir('cogts-tls-registry-');
  const ip = externalIpv4();
  const openssl = (...args: string[]) => execOk('openssl', args, { cwd: dir });
  await openssl(
    ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem'],
    ...['-days', '1', '-subj', '/CN=cogts-test-registry-ca'],
  );
  await writeFile(join(dir, 'san.cnf'), `subjectAltName=IP:${ip},IP:127.0.0.1\n`);
  await openssl(
    ...['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr'],
    ...['-subj', '/CN=cogts-test-registry'],
  );
  await openssl(
    ...['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'],
    ...['-out', 'server.pem', '-days', '1', '-extfile', 'san.cnf'],
  );
  // skopeo's --cert-dir wants the CA as *.crt
  await mkdir(join(dir, 'certs'));
  await writeFile(join(dir, 'certs', 'ca.crt'), await readFile(join(dir, 'ca.pem')));
  const port = await freePort(ip);
  registry = `${ip}:${port}`;
  // the same registry on loopback, where cog asks over plain HTTP first, then HTTPS
  loopback = `127.0.0.1:${port}`;
  await writeFile(
    join(dir, 'registry.yml'),
    [
      'version: 0.1',
      'log: {level: warn, accesslog: {disabled: true}}',
      `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}}`,
      `http: {addr: "0.0.0.0:${port}", tls: {certificate: ${join(dir, 'server.pem')}, key: ${join(dir, 'server.key')}}}`,
      '',
    ].join('\n'),
  );
  daemon = spawn('docker-registry', ['serve', join(dir, 'registry.yml')], { env: tb.env, stdio: 'ignore' });
  const ca = await readFile(join(dir, 'ca.pem'), 'utf8');
  const deadline = Date.now() + 20_000;
  while ((await ping(ca)) !== 200) {
    if (daemon.exitCode !== null) throw new Error(`docker-registry exited with ${daemon.exitCode}`);
    if (Date.now() > deadline) throw new Error(`the TLS registry at ${registry} did not answer`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
});

after(async () => {
  if (daemon && daemon.exitCode === null) {
    const gone = new Promise((resolve) => daemon?.once('exit', resolve));
    daemon.kill('SIGTERM');
    await gone;
  }
});

async function cogEnv(extra: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {
    ...tb.env,
    COG_IMAGE_STORE: join(dir, 'store'),
    DOCKER_CONFIG: await tempDir('cogts-tls-nocfg-'),
  };
  for (const name of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'COG_REGISTRY_USERNAME', 'BUILDKIT_PROGRESS']) {
    delete env[name];
  }
  return { ...env, ...extra };
}

const cogIn = async (args: string[], extra: NodeJS.ProcessEnv = {}) =>
  await exec(cog, args, { cwd: hello, env: await cogEnv(extra) });

const explain = (r: ExecResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

test(
  'without trust in the CA, cog push fails naming the certificate problem and SSL_CERT_FILE',
  { timeout: 300_000 },
  async () => {
    const r = await cogIn(['push', `${registry}/cogts/tls:${run}`, '--progress', 'plain']);
    assert.notEqual(r.code, 0, explain(r));
    assert.match(r.stderr, new RegExp(`cannot reach ${registry.replace(/\./g, '\\.')}`), explain(r));
    assert.match(r.stderr, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/, explain(r));
    assert.match(r.stderr, /SSL_CERT_FILE/, explain(r));
  },
);

test(
  'with SSL_CERT_FILE, cog push lands over HTTPS and skopeo reads back the same digest',
  { timeout: 300_000 },
  async () => {
    const target = `${registry}/cogts/tls:${run}`;
    const trust = { SSL_CERT_FILE: join(dir, 'ca.pem') };
    const r = await cogIn(['push', target, '--progress', 'plain'], trust);
    assert.equal(r.code, 0, explain(r));
    const digest = /@(sha256:[0-9a-f]{64})$/.exec(r.stdout.trim())?.[1];
    assert.ok(digest, `stdout ends with the digest: ${r.stdout}`);

    const raw = await execOk(
      'skopeo',
      ['inspect', '--raw', '--cert-dir', join(dir, 'certs'), `docker://${target}`],
      { env: tb.env },
    );
    const { createHash } = await import('node:crypto');
    assert.equal(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, digest);

    const inspected = await cogIn(['inspect', target, '--json'], trust);
    assert.equal(inspected.code, 0, explain(inspected));
    const summary = JSON.parse(inspected.stdout) as { digest?: string; labels?: Record<string, string> };
    assert.equal(summary.digest, digest);
    assert.ok(summary.labels?.['run.cog.version'], 'the Cog labels are read over HTTPS');
  },
);

test(
  "with NODE_EXTRA_CA_CERTS, which bin/cog keeps out of Node's start-up and adds itself, push and inspect work over HTTPS",
  { timeout: 300_000 },
  async () => {
    const target = `${registry}/cogts/tls-node-extra:${run}`;
    const trust = { NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') };
    const r = await cogIn(['push', target, '--progress', 'plain'], trust);
    assert.equal(r.code, 0, explain(r));
    const digest = /@(sha256:[0-9a-f]{64})$/.exec(r.stdout.trim())?.[1];
    assert.ok(digest, `stdout ends with the digest: ${r.stdout}`);
    const inspected = await cogIn(['inspect', target, '--remote', '--json'], trust);
    assert.equal(inspected.code, 0, explain(inspected));
    assert.equal((JSON.parse(inspected.stdout) as { digest?: string }).digest, digest);
  },
);

test('an unreadable SSL_CERT_FILE is an error that names the variable', { timeout: 120_000 }, async () => {
  const r = await cogIn(['inspect', `${registry}/cogts/not-in-the-store:${run}`], {
    SSL_CERT_FILE: join(dir, 'no-such-ca.pem'),
  });
  assert.notEqual(r.code, 0, explain(r));
  assert.match(r.stderr, /SSL_CERT_FILE=.*no-such-ca\.pem: cannot read it \(ENOENT\)/, explain(r));
});

test(
  'a loopback registry whose certificate is not trusted is a certificate error, not a fallback to HTTP',
  { timeout: 120_000 },
  async () => {
    const r = await cogIn(['inspect', `${loopback}/cogts/tls:${run}`, '--remote']);
    assert.notEqual(r.code, 0, explain(r));
    assert.match(
      r.stderr,
      new RegExp(`cannot reach ${loopback.replace(/\./g, '\\.')}: GET https://`),
      explain(r),
    );
    assert.match(r.stderr, /SSL_CERT_FILE/, explain(r));
  },
);

test(
  'with SSL_CERT_FILE a loopback registry that speaks TLS is reached over HTTPS (after plain HTTP is refused)',
  { timeout: 120_000 },
  async () => {
    const r = await cogIn(['inspect', `${loopback}/cogts/tls:${run}`, '--remote', '--json'], {
      SSL_CERT_FILE: join(dir, 'ca.pem'),
    });
    assert.equal(r.code, 0, explain(r));
    assert.ok((JSON.parse(r.stdout) as { labels?: Record<string, string> }).labels?.['run.cog.version']);
  },
);

test(
  'through HTTPS_PROXY, the TLS to the registry inside the tunnel trusts SSL_CERT_FILE as a direct connection does',
  { timeout: 120_000 },
  async () => {
    const proxy = await startConnectProxy({
      route: (target) => (target === registry ? registry : undefined),
    });
    try {
      const target = `${registry}/cogts/tls:${run}`;
      const untrusted = await cogIn(['inspect', target, '--remote'], { HTTPS_PROXY: proxy.url });
      assert.notEqual(untrusted.code, 0, explain(untrusted));
      assert.match(untrusted.stderr, /SSL_CERT_FILE/, explain(untrusted));
      const r = await cogIn(['inspect', target, '--remote', '--json'], {
        HTTPS_PROXY: proxy.url,
        SSL_CERT_FILE: join(dir, 'ca.pem'),
      });
      assert.equal(r.code, 0, explain(r));
      assert.ok((JSON.parse(r.stdout) as { labels?: Record<string, string> }).labels?.['run.cog.version']);
      assert.ok(
        proxy.tunnels.length >= 2 && proxy.tunnels.every((t) => t === registry),
        JSON.stringify(proxy.tunnels),
      );
    } finally {
      await proxy.close();
    }
  },
);
