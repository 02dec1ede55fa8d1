// Proof that the test bed works: a real buildkitd, real registries and the base images later issues rely on.
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { buildctlDockerfile } from '../support/buildctl.js';
import { exec, execOk } from '../support/exec.js';
import { ensureTestbed, type Testbed, testbedCommand } from '../support/testbed.js';

let tb: Testbed;
const runId = `${Date.now().toString(36)}-${process.pid}`;

before(async () => {
  tb = await ensureTestbed();
});

async function skopeoInspect(ref: string, extra: string[] = []) {
  const { stdout } = await execOk('skopeo', ['inspect', '--tls-verify=false', ...extra, `docker://${ref}`]);
  return JSON.parse(stdout) as { Digest: string; Layers: string[]; Labels: Record<string, string> | null };
}

async function localOutputDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'cogts-out-'));
}

/** A last stage that keeps only /proof of the stage before it, so a local export stays small. */
const proofStage = 'FROM scratch AS proof\nCOPY --from=build /proof/ /';

/** Builds the Dockerfile's `proof` stage into a fresh directory and returns the directory. */
async function buildProof(dockerfile: string): Promise<string> {
  const out = await localOutputDir();
  await buildctlDockerfile(tb, {
    dockerfile: `${dockerfile}\n${proofStage}`,
    output: `type=local,dest=${out}`,
  });
  return out;
}

const timeout = 300_000;

describe('test bed services', { timeout }, () => {
  test('buildkitd answers on BUILDKIT_HOST and has a linux/amd64 worker', async () => {
    assert.match(tb.buildkitHost, /^unix:\/\//);
    const { stdout } = await execOk('buildctl', ['debug', 'workers'], { env: tb.env });
    assert.match(stdout, /linux\/amd64/);
    const version = await execOk('buildctl', ['--version'], { env: tb.env });
    assert.match(version.stdout, /v0\.32\.2/);
  });

  test('the plain registry serves the base images under their Docker Hub and GHCR names', async () => {
    const tags = async (repo: string) => {
      const res = await fetch(`http://${tb.registry}/v2/${repo}/tags/list`);
      assert.equal(res.status, 200, `tags of ${repo}`);
      return ((await res.json()) as { tags: string[] }).tags;
    };
    const python = await tags('library/python');
    for (const tag of ['3.11-slim', '3.11', '3.13-slim', '3.13']) assert.ok(python.includes(tag), tag);
    assert.ok((await tags('nvidia/cuda')).includes('12.8.1-cudnn9-devel-ubuntu24.04'));
    assert.ok((await tags('astral-sh/uv')).includes('0.9.26'));
  });

  test('`up` a second time restarts nothing and rebuilds nothing', async () => {
    const before = await testbedCommand('status');
    const again = await testbedCommand('up');
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /building|pushing|starting/);
    const after = await testbedCommand('status');
    assert.equal(after.stdout, before.stdout);
    assert.match(after.stdout, /buildkitd: running \(pid \d+\)/);
  });
});

describe('building on the test bed with buildctl', { timeout }, () => {
  test('FROM python:3.11-slim, python -c and a pip install from PyPI, pushed and read back', async () => {
    const ref = `${tb.registry}/cogts-test/proof:${runId}`;
    const dockerfile = [
      'FROM python:3.11-slim AS build',
      '#CA',
      `RUN mkdir /proof && python -c "import sys; open('/proof/python-version.txt', 'w').write(sys.version.split()[0])"`,
      "RUN pip install --no-cache-dir six==1.16.0 && python -c \"import six; open('/proof/six.txt', 'w').write(six.__version__)\"",
    ].join('\n');
    const pushed = await buildctlDockerfile(tb, {
      dockerfile,
      output: `type=image,name=${ref},push=true,registry.insecure=true`,
    });
    const digest = pushed.metadata['containerimage.digest'];
    assert.match(String(digest), /^sha256:[0-9a-f]{64}$/);

    const inspected = await skopeoInspect(ref);
    assert.equal(inspected.Digest, digest);
    const base = await skopeoInspect(`${tb.registry}/library/python:3.11-slim`);
    assert.ok(inspected.Layers.length >= base.Layers.length + 2, 'the two RUN steps add layers');
    assert.deepEqual(inspected.Layers.slice(0, base.Layers.length), base.Layers);

    // the same graph again, to a local directory: every step is cached and the files are there
    const out = await localOutputDir();
    const local = await buildctlDockerfile(tb, {
      dockerfile: `${dockerfile}\n${proofStage}`,
      output: `type=local,dest=${out}`,
    });
    assert.match(local.progress, /pip install --no-cache-dir six==1\.16\.0[^\n]*\n#\d+ CACHED/);
    assert.match(await readFile(join(out, 'python-version.txt'), 'utf8'), /^3\.11\.\d+$/);
    assert.equal(await readFile(join(out, 'six.txt'), 'utf8'), '1.16.0');
  });

  test('python:3.13-slim runs Python 3.13 with pip, and no PEP 668 block', async () => {
    const out = await buildProof(
      [
        'FROM python:3.13-slim AS build',
        'RUN mkdir /proof && python --version > /proof/version.txt && pip --version > /proof/pip.txt',
        'RUN ! ls /usr/lib/python3*/EXTERNALLY-MANAGED',
      ].join('\n'),
    );
    assert.match(await readFile(join(out, 'version.txt'), 'utf8'), /^Python 3\.13\.\d+/);
    assert.match(await readFile(join(out, 'pip.txt'), 'utf8'), /^pip \d+/);
  });

  test('ghcr.io/astral-sh/uv is mirrored: COPY --from it gives a working uv', async () => {
    const out = await buildProof(
      [
        'FROM python:3.11-slim AS build',
        'COPY --from=ghcr.io/astral-sh/uv:0.9.26 /uv /uvx /usr/local/bin/',
        'RUN mkdir /proof && uv --version > /proof/uv.txt && uvx --version > /proof/uvx.txt',
      ].join('\n'),
    );
    assert.match(await readFile(join(out, 'uv.txt'), 'utf8'), /^uv 0\.9\.26/);
    assert.match(await readFile(join(out, 'uvx.txt'), 'utf8'), /0\.9\.26/);
  });

  test('the nvidia/cuda stand-in says it is a test-only stand-in and carries the CUDA env', async () => {
    const out = await buildProof(
      [
        'FROM nvidia/cuda:12.8.1-cudnn9-devel-ubuntu24.04 AS build',
        'RUN mkdir /proof && cp /usr/local/cuda/TESTBED-STANDIN.txt /proof/standin.txt',
        'RUN echo "$CUDA_VERSION" > /proof/cuda.txt',
      ].join('\n'),
    );
    assert.match(await readFile(join(out, 'standin.txt'), 'utf8'), /TEST-ONLY stand-in/);
    assert.equal((await readFile(join(out, 'cuda.txt'), 'utf8')).trim(), '12.8.1');
  });
});

describe('the auth registry', { timeout }, () => {
  const source = () => `docker://${tb.registry}/astral-sh/uv:0.9.26`;
  const target = () => `docker://${tb.authRegistry}/cogts-test/auth-proof:${runId}`;
  const copyArgs = () => ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', source(), target()];

  test('refuses an anonymous push', async () => {
    const res = await fetch(`http://${tb.authRegistry}/v2/cogts-test/anon/blobs/uploads/`, {
      method: 'POST',
    });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    const copy = await exec('skopeo', copyArgs());
    assert.notEqual(copy.code, 0);
    assert.match(copy.stderr, /unauthorized|authentication required/i);
  });

  test('refuses wrong credentials and accepts the printed ones', async () => {
    const wrong = await exec('skopeo', [...copyArgs(), `--dest-creds=${tb.authUser}:not-the-password`]);
    assert.notEqual(wrong.code, 0);
    await execOk('skopeo', [...copyArgs(), `--dest-creds=${tb.authUser}:${tb.authPassword}`]);
    const ref = target().slice('docker://'.length);
    const inspected = await skopeoInspect(ref, [`--creds=${tb.authUser}:${tb.authPassword}`]);
    const original = await skopeoInspect(`${tb.registry}/astral-sh/uv:0.9.26`);
    assert.deepEqual(inspected.Layers, original.Layers);
    const anonymous = await exec('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`]);
    assert.notEqual(anonymous.code, 0);
  });
});

describe('the token registry', { timeout }, () => {
  const realm = () => tb.env.COG_TEST_TOKEN_REALM ?? '';
  const target = () => `docker://${tb.tokenRegistry}/cogts-test/token-proof:${runId}`;
  const copyArgs = () => [
    'copy',
    '--src-tls-verify=false',
    '--dest-tls-verify=false',
    `docker://${tb.registry}/astral-sh/uv:0.9.26`,
    target(),
  ];
  const tokenFor = async (query: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${realm()}?service=cog-ts-testbed&${query}`, { headers });
    return { status: res.status, body: (await res.json()) as { token?: string; expires_in?: number } };
  };

  test('sends clients to the token server, whose signed tokens it takes and whose forgeries it refuses', async () => {
    const ping = await fetch(`http://${tb.tokenRegistry}/v2/`);
    assert.equal(ping.status, 401);
    assert.equal(ping.headers.get('www-authenticate'), `Bearer realm="${realm()}",service="cog-ts-testbed"`);
    const { status, body } = await tokenFor('');
    assert.equal(status, 200);
    const token = body.token ?? '';
    assert.ok(token.startsWith('eyJ') && (body.expires_in ?? 0) > 0, JSON.stringify(body));
    const bearer = (token: string) =>
      fetch(`http://${tb.tokenRegistry}/v2/`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await bearer(token)).status, 200);
    // the same token with another signature: a registry that checked nothing would take it
    const [header, claims] = token.split('.');
    const forged = `${header}.${claims}.${Buffer.alloc(64, 7).toString('base64url')}`;
    assert.equal((await bearer(forged)).status, 401);
  });

  test('grants anonymous users pull only, the test bed user push too, and refuses a wrong password', async () => {
    const scope = 'scope=repository:cogts-test/token-proof:pull,push';
    const access = (token: string | undefined) =>
      (JSON.parse(Buffer.from(token?.split('.')[1] ?? '', 'base64url').toString()) as { access: unknown })
        .access;
    const anonymous = await tokenFor(scope);
    assert.deepEqual(access(anonymous.body.token), [
      { type: 'repository', name: 'cogts-test/token-proof', actions: ['pull'] },
    ]);
    const basic = (password: string) => ({
      authorization: `Basic ${Buffer.from(`${tb.authUser}:${password}`).toString('base64')}`,
    });
    const user = await tokenFor(scope, basic(tb.authPassword));
    assert.deepEqual(access(user.body.token), [
      { type: 'repository', name: 'cogts-test/token-proof', actions: ['pull', 'push'] },
    ]);
    assert.equal((await tokenFor(scope, basic('not-the-password'))).status, 401);

    const copy = await exec('skopeo', copyArgs());
    assert.notEqual(copy.code, 0);
    assert.match(copy.stderr, /denied|unauthorized/i);
    await execOk('skopeo', [...copyArgs(), `--dest-creds=${tb.authUser}:${tb.authPassword}`]);
    const ref = target().slice('docker://'.length);
    const original = await skopeoInspect(`${tb.registry}/astral-sh/uv:0.9.26`);
    assert.deepEqual((await skopeoInspect(ref)).Layers, original.Layers, 'anonymous pull works');
  });
});
