// `cog push` and `cog inspect` through an HTTP proxy (HTTP_PROXY, as docker, crane and buildkitd read
// it): the registry is named by a host no resolver here knows, which only the test's CONNECT proxy
// routes to the test bed's plain registry, so a push that lands went through the proxy. The proxy asks
// for credentials (given in HTTP_PROXY, never printed); NO_PROXY and a missing HTTP_PROXY send the
// same push direct, where the name does not resolve.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ConnectProxy, startConnectProxy } from '../support/connect-proxy.js';
import { type ExecResult, exec, execOk } from '../support/exec.js';
import { stepsFromPlainProgress } from '../support/plain-steps.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { type Testbed, ensureTestbed, repoRoot } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const hello = join(repoRoot, 'fixtures', 'models', 'hello');
const tempDir = tempDirsRemovedAfterTests();
const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const proxyPassword = `proxy-pw-${randomBytes(6).toString('hex')}`;
let tb: Testbed;
let proxy: ConnectProxy;
let alias: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  tb = await ensureTestbed();
  const port = tb.registry.slice(tb.registry.lastIndexOf(':') + 1);
  alias = `registry.cogts-proxy.test:${port}`;
  proxy = await startConnectProxy({
    route: (target) => (target === alias ? `127.0.0.1:${port}` : undefined),
    credentials: { user: 'proxyuser', password: proxyPassword },
  });
  env = {
    ...tb.env,
    COG_IMAGE_STORE: join(await tempDir('cogts-proxy-store-'), 'store'),
    DOCKER_CONFIG: await tempDir('cogts-proxy-cfg-'),
    // the alias is no loopback address: plain HTTP only when listed
    COG_INSECURE_REGISTRIES: alias,
  };
  for (const name of ['COG_REGISTRY_USERNAME', 'COG_REGISTRY_PASSWORD', 'BUILDKIT_PROGRESS'])
    delete env[name];
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'])
    delete env[name];
});

after(async () => {
  await proxy?.close();
});

const cogRun = (args: string[], extra: NodeJS.ProcessEnv) =>
  exec(cog, args, { cwd: hello, env: { ...env, ...extra } });

function explain(r: ExecResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

async function skopeoDigest(ref: string): Promise<string> {
  const { stdout } = await execOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {
    env: tb.env,
  });
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}

describe('cog through an HTTP proxy', { timeout: 600_000 }, () => {
  const repo = `cogts-test/proxy-${run}`;
  let digest = '';

  test('cog push goes through HTTP_PROXY (with its credentials) and lands; plain HTTP is sent in absolute form, no CONNECT', async () => {
    const [tunnelsBefore, forwardedBefore] = [proxy.tunnels.length, proxy.forwarded.length];
    const r = await cogRun(['push', `${alias}/${repo}:v1`, '--progress', 'plain'], { HTTP_PROXY: proxy.url });
    assert.equal(r.code, 0, explain(r));
    digest = /@(sha256:[0-9a-f]{64})$/.exec(r.stdout.trim())?.[1] ?? '';
    assert.ok(digest, explain(r));
    // the registry the alias stands for holds what was pushed
    assert.equal(await skopeoDigest(`${tb.registry}/${repo}:v1`), digest);
    // as Go's client does: proxies often refuse CONNECT to any port but 443
    const forwarded = proxy.forwarded.slice(forwardedBefore);
    assert.ok(forwarded.length > 3 && forwarded.every((host) => host === alias), JSON.stringify(forwarded));
    assert.equal(proxy.tunnels.length, tunnelsBefore, 'no CONNECT tunnel for a plain-HTTP registry');
    assert.ok(!(r.stdout + r.stderr).includes(proxyPassword), 'the proxy password is never printed');
  });

  test('cog inspect --remote reads the image through the proxy (lowercase http_proxy)', async () => {
    const before = proxy.forwarded.length;
    const r = await cogRun(['inspect', '--remote', '--json', `${alias}/${repo}:v1`], {
      http_proxy: proxy.url,
    });
    assert.equal(r.code, 0, explain(r));
    assert.equal((JSON.parse(r.stdout) as { digest: string }).digest, digest);
    assert.ok(proxy.forwarded.length > before);
  });

  test('without HTTP_PROXY, or with the registry in NO_PROXY, the push goes direct and the name does not resolve', async () => {
    for (const extra of [{}, { HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,.cogts-proxy.test' }]) {
      const before = proxy.tunnels.length + proxy.forwarded.length;
      const r = await cogRun(['push', `${alias}/${repo}:v2`, '--progress', 'plain'], extra);
      assert.notEqual(r.code, 0, explain(r));
      assert.match(r.stderr, new RegExp(`cannot (push to|reach) ${alias.replace(/\./g, '\\.')}`), explain(r));
      assert.deepEqual(stepsFromPlainProgress(r.stderr).ran, [], 'nothing was built');
      assert.equal(proxy.tunnels.length + proxy.forwarded.length, before, 'nothing went through the proxy');
    }
  });

  test('a proxy refusing the credentials fails naming the proxy, not its password', async () => {
    const wrong = proxy.url.replace(proxyPassword, 'not-the-proxy-password');
    const r = await cogRun(['push', `${alias}/${repo}:v3`, '--progress', 'plain'], { HTTP_PROXY: wrong });
    assert.notEqual(r.code, 0, explain(r));
    assert.ok(proxy.refused.includes(407));
    assert.match(
      r.stderr,
      /the proxy http:\/\/127\.0\.0\.1:\d+ \(HTTP_PROXY\) would not open a connection to registry\.cogts-proxy\.test:\d+: it answered HTTP 407/,
      explain(r),
    );
    assert.match(r.stderr, /^hint: the proxy wants credentials: put them in HTTP_PROXY/m, explain(r));
    assert.deepEqual(stepsFromPlainProgress(r.stderr).ran, [], 'nothing was built');
    assert.ok(!r.stderr.includes('not-the-proxy-password'), explain(r));
  });
});
