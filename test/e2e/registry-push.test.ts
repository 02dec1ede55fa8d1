// Pushing images to real registries (Debian's distribution 2.8 from the test bed): digests match what
// skopeo reads back, a second push uploads nothing, a push to a sibling repository mounts, and basic and
// bearer-token authentication work (the token flow through a proxy that issues and checks tokens).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type PushResult,
  RegistryClient,
  RegistryError,
  type RetryPolicy,
  anonymousKeychain,
  defaultKeychain,
  fetchImage,
  parseReference,
  pushFromLayout,
} from '../../src/registry/index.js';
import { execOk } from '../support/exec.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { type LayoutImage, writeLayout } from '../support/registry-fixtures.js';
import { writeDockerLogin } from '../support/docker-config.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, type Testbed } from '../support/testbed.js';

const fast: RetryPolicy = {
  attempts: 3,
  initialDelayMs: 50,
  factor: 2,
  maxDelayMs: 500,
  jitter: 0.1,
  maxRetryAfterMs: 1000,
};
const tempDir = tempDirsRemovedAfterTests();
const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
let tb: Testbed;
let image: LayoutImage;
let multi: LayoutImage;

before(async () => {
  tb = await ensureTestbed();
  image = await writeLayout(join(await tempDir('cogts-reg-layout-'), 'layout'), {
    layerSizes: [300_000, 2_000_000, 5_000],
    seed: `img-${run}`,
  });
  multi = await writeLayout(join(await tempDir('cogts-reg-multi-'), 'layout'), {
    layerSizes: [100_000],
    seed: `multi-${run}`,
    platforms: ['amd64', 'arm64'],
  });
});

const skopeo = (args: string[]) => execOk('skopeo', args, { env: tb.env });

async function rawDigest(ref: string, creds?: string): Promise<string> {
  const args = [
    'inspect',
    '--raw',
    '--tls-verify=false',
    ...(creds ? ['--creds', creds] : []),
    `docker://${ref}`,
  ];
  const { stdout } = await skopeo(args);
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}

/** A DOCKER_CONFIG directory with a login for `host`. */
async function dockerConfigFor(host: string, user: string, password: string): Promise<string> {
  return writeDockerLogin(await tempDir('cogts-reg-dockercfg-'), host, user, password);
}

function client(env: NodeJS.ProcessEnv = {}) {
  return new RegistryClient({ env, keychain: defaultKeychain(env), retry: fast });
}

const uploads = (proxy: FaultProxy) =>
  proxy.stats.requests.filter(
    (r) => r.method === 'POST' && r.path.includes('/blobs/uploads/') && !r.path.includes('mount='),
  ).length;

describe('push to the plain registry', () => {
  let proxy: FaultProxy;
  let c: RegistryClient;
  let first: PushResult;
  const repo = `cogts-test/push-${run}`;
  before(async () => {
    proxy = await startFaultProxy(tb.registry);
    c = client();
  });
  after(async () => {
    await c.close();
    await proxy.close();
  });

  test('an image lands with the digest skopeo reads back, and copies back out', async () => {
    const events: number[] = [];
    let size = 0;
    first = await pushFromLayout(c, image.dir, undefined, parseReference(`${proxy.host}/${repo}:v1`), {
      onProgress: (e) => {
        events.push(e.total.done);
        size = e.total.size;
      },
    });
    assert.equal(first.digest, image.digest);
    assert.deepEqual(first.blobs, { uploaded: 4, existed: 0, mounted: 0 });
    assert.equal(await rawDigest(`${tb.registry}/${repo}:v1`), image.digest);
    const out = await tempDir('cogts-reg-copy-');
    await skopeo([
      'copy',
      '-q',
      '--src-tls-verify=false',
      `docker://${tb.registry}/${repo}:v1`,
      `oci:${out}:x`,
    ]);
    // totals never go backwards and end at the full size
    assert.equal(events.at(-1), size);
    assert.ok(size > image.layers.reduce((s, l) => s + l.size, 0)); // layers and the config
    for (let i = 1; i < events.length; i++) assert.ok(events[i]! >= events[i - 1]!);
  });

  test('pushing the same image again uploads no blob', async () => {
    const before = uploads(proxy);
    const again = await pushFromLayout(c, image.dir, undefined, parseReference(`${proxy.host}/${repo}:v2`));
    assert.equal(again.digest, image.digest);
    assert.deepEqual(again.blobs, { uploaded: 0, existed: 4, mounted: 0 });
    assert.equal(uploads(proxy), before);
    assert.equal(await rawDigest(`${tb.registry}/${repo}:v2`), image.digest);
  });

  test('a push of many blobs keeps its connections: HEAD requests do not close them', async () => {
    const many = await writeLayout(join(await tempDir('cogts-reg-many-'), 'layout'), {
      layerSizes: Array.from({ length: 24 }, () => 4_000),
      seed: `many-${run}`,
    });
    const own = await startFaultProxy(tb.registry);
    const fresh = client();
    try {
      const target = parseReference(`${own.host}/cogts-test/many-${run}:v1`);
      const pushed = await pushFromLayout(fresh, many.dir, undefined, target);
      assert.deepEqual(pushed.blobs, { uploaded: 25, existed: 0, mounted: 0 });
      const again = await pushFromLayout(fresh, many.dir, undefined, target);
      assert.deepEqual(again.blobs, { uploaded: 0, existed: 25, mounted: 0 });
      const heads = own.stats.requests.filter((r) => r.method === 'HEAD').length;
      assert.ok(heads >= 50, `${heads} HEAD requests`);
      // the client's pool holds 8 connections per registry (9 seen here); a connection closed after every
      // HEAD made it 52
      assert.ok(own.stats.connections <= 12, `${own.stats.connections} connections for ${heads} HEADs`);
    } finally {
      await fresh.close();
      await own.close();
    }
  });

  test('pushing to a sibling repository mounts instead of uploading', async () => {
    const before = uploads(proxy);
    const patchBytes = proxy.stats.bodyBytes.PATCH ?? 0;
    const sibling = `cogts-test/mount-${run}`;
    const result = await pushFromLayout(
      c,
      image.dir,
      undefined,
      parseReference(`${proxy.host}/${sibling}:v1`),
      {
        mountFrom: [repo],
      },
    );
    assert.deepEqual(result.blobs, { uploaded: 0, existed: 0, mounted: 4 });
    assert.equal(uploads(proxy), before);
    assert.equal(proxy.stats.bodyBytes.PATCH ?? 0, patchBytes);
    assert.equal(await rawDigest(`${tb.registry}/${sibling}:v1`), image.digest);
  });

  test('a source that declines a mount (202) is not the last word: the next one is asked', async () => {
    const before = uploads(proxy);
    const sibling = `cogts-test/mount-next-${run}`;
    const result = await pushFromLayout(
      c,
      image.dir,
      undefined,
      parseReference(`${proxy.host}/${sibling}:v1`),
      {
        // the first source has never held these blobs: the registry declines, opening an upload session
        mountFrom: (blob) => [
          `cogts-test/empty-${run}`,
          image.layers.some((l) => l.digest === blob) ? repo : `cogts-test/nowhere-${run}`,
        ],
      },
    );
    assert.equal(result.blobs.mounted, image.layers.length);
    assert.equal(result.blobs.uploaded, 1, 'only the config, whose sources both declined');
    const deletes = proxy.stats.requests.filter(
      (r) => r.method === 'DELETE' && r.path.includes('/blobs/uploads/'),
    );
    assert.equal(
      deletes.length,
      image.layers.length + 1,
      "each declined mount's session let go but the one used",
    );
    assert.equal(uploads(proxy), before, "the config went up on the last declined mount's session");
    assert.equal(await rawDigest(`${tb.registry}/${sibling}:v1`), image.digest);
  });

  test('an index goes up with its children; the read side picks linux/amd64 and reads its config', async () => {
    const ref = parseReference(`${tb.registry}/cogts-test/multi-${run}:v1`);
    const result = await pushFromLayout(c, multi.dir, undefined, ref, { concurrency: 2 });
    assert.equal(result.digest, multi.digest);
    assert.equal(result.blobs.uploaded, 5); // shared layer, two own layers, two configs
    assert.equal(await rawDigest(`${tb.registry}/cogts-test/multi-${run}:v1`), multi.digest);
    const remote = await fetchImage(c, ref);
    assert.equal(remote.index?.digest, multi.digest);
    assert.deepEqual((remote.config.config as { Labels: Record<string, string> }).Labels, {
      'org.cogts.test': 'amd64',
    });
    const arm = await fetchImage(c, ref, { platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(arm.config.architecture, 'arm64');
  });

  test('a manifest refused for a blob the registry claimed to have: that blob goes up again', async (t) => {
    const layer = image.layers[1]!;
    const lying = await startFaultProxy(tb.registry, { faults: { claimBlobs: [layer.digest] } });
    t.after(() => lying.close());
    const ref = `${lying.host}/${repo}-claimed:v1`;
    const notes: string[] = [];
    const result = await pushFromLayout(c, image.dir, undefined, parseReference(ref), {
      onNote: (line) => notes.push(line),
    });
    assert.equal(result.digest, first.digest);
    assert.deepEqual(result.blobs, { uploaded: image.layers.length + 1, existed: 0, mounted: 0 });
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, /uploading 1 blob again/);
    const manifestPuts = lying.stats.requests.filter(
      (r) => r.method === 'PUT' && r.path.includes('/manifests/'),
    );
    assert.deepEqual(
      manifestPuts.map((r) => r.status),
      [400, 201],
      'refused for the blob, then accepted',
    );
    assert.equal(await rawDigest(`${tb.registry}/${repo}-claimed:v1`), first.digest);
  });

  test('cancelling a push stops it with an AbortError', async () => {
    const requests = proxy.stats.requests.length;
    const ref = parseReference(`${proxy.host}/${repo}-cancel:v1`);
    await assert.rejects(
      pushFromLayout(c, image.dir, undefined, ref, { signal: AbortSignal.abort() }),
      (err: Error) => err.name === 'AbortError',
    );
    assert.equal(proxy.stats.requests.length, requests, 'nothing was sent');
    const controller = new AbortController();
    await assert.rejects(
      pushFromLayout(c, image.dir, undefined, ref, {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.blob.state === 'checking') controller.abort();
        },
      }),
      (err: Error) => err.name === 'AbortError',
    );
  });

  test('the read side follows a testbed image by tag', async () => {
    const remote = await fetchImage(c, parseReference(`${tb.registry}/library/python:3.11-slim`));
    assert.equal(
      (remote.config.config as { Labels?: Record<string, string> }).Labels?.['org.cogts.testbed'],
      'true',
    );
  });
});

describe('basic auth registry', () => {
  const repo = `cogts-test/basic-${run}`;

  test('without credentials the push fails with a hint to log in, and no secret in the message', async () => {
    const c = new RegistryClient({ env: {}, keychain: anonymousKeychain, retry: fast });
    try {
      await assert.rejects(
        pushFromLayout(c, image.dir, undefined, parseReference(`${tb.authRegistry}/${repo}:v1`)),
        (err: unknown) => {
          assert.ok(err instanceof RegistryError, String(err));
          assert.equal(err.status, 401);
          assert.match(err.message, new RegExp(tb.authRegistry.replace(/\./g, '\\.')));
          assert.match(err.hint ?? '', /cog login 127\.0\.0\.1:5056|COG_REGISTRY_USERNAME/);
          return true;
        },
      );
    } finally {
      await c.close();
    }
  });

  test('wrong credentials say they were rejected, and never appear in the error', async () => {
    const cfg = await dockerConfigFor(tb.authRegistry, tb.authUser, 'not-the-password-42');
    const c = client({ DOCKER_CONFIG: cfg });
    try {
      await assert.rejects(
        pushFromLayout(c, image.dir, undefined, parseReference(`${tb.authRegistry}/${repo}:v1`)),
        (err: unknown) => {
          assert.ok(err instanceof RegistryError);
          assert.match(err.hint ?? '', /rejected the credentials/);
          assert.doesNotMatch(`${err.message} ${err.hint} ${err.url}`, /not-the-password-42/);
          return true;
        },
      );
    } finally {
      await c.close();
    }
  });

  test('credentials from a DOCKER_CONFIG login push the image', async () => {
    const cfg = await dockerConfigFor(tb.authRegistry, tb.authUser, tb.authPassword);
    const c = client({ DOCKER_CONFIG: cfg });
    try {
      const result = await pushFromLayout(
        c,
        image.dir,
        undefined,
        parseReference(`${tb.authRegistry}/${repo}:v1`),
      );
      assert.equal(result.digest, image.digest);
      assert.equal(
        await rawDigest(`${tb.authRegistry}/${repo}:v1`, `${tb.authUser}:${tb.authPassword}`),
        image.digest,
      );
    } finally {
      await c.close();
    }
  });

  test('COG_REGISTRY_USERNAME / COG_REGISTRY_PASSWORD work for CI', async () => {
    const empty = await tempDir('cogts-reg-nocfg-');
    const c = client({
      DOCKER_CONFIG: empty,
      COG_REGISTRY_USERNAME: tb.authUser,
      COG_REGISTRY_PASSWORD: tb.authPassword,
    });
    try {
      const result = await pushFromLayout(
        c,
        image.dir,
        undefined,
        parseReference(`${tb.authRegistry}/${repo}:ci`),
      );
      assert.equal(result.blobs.existed, 4);
    } finally {
      await c.close();
    }
  });
});

describe('bearer token registry', () => {
  const user = 'tokenuser';
  const password = `pw-${randomBytes(6).toString('hex')}`;

  test('no credentials: an anonymous token is fetched, the push is denied with a login hint', async () => {
    const proxy = await startFaultProxy(tb.registry, { bearer: { username: user, password } });
    const c = client({ DOCKER_CONFIG: await tempDir('cogts-reg-nocfg-') });
    try {
      await assert.rejects(
        pushFromLayout(c, image.dir, undefined, parseReference(`${proxy.host}/cogts-test/tok-${run}:v1`)),
        (err: unknown) => {
          assert.ok(err instanceof RegistryError, String(err));
          assert.equal(err.status, 401);
          assert.match(err.hint ?? '', /cog login/);
          return true;
        },
      );
      assert.ok(proxy.stats.tokens.length > 0 && proxy.stats.tokens.every((t) => !t.basic));
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  test('with credentials: tokens per scope, mounts ask for pull on the source, expired tokens are renewed', async () => {
    const proxy = await startFaultProxy(tb.registry, {
      bearer: { username: user, password, expiresIn: 2, accessTokenField: true },
    });
    const cfg = await dockerConfigFor(proxy.host, user, password);
    const c = client({ DOCKER_CONFIG: cfg });
    const repo = `cogts-test/tok-${run}`;
    try {
      const result = await pushFromLayout(
        c,
        image.dir,
        undefined,
        parseReference(`${proxy.host}/${repo}:v1`),
      );
      assert.equal(result.digest, image.digest);
      assert.ok(proxy.stats.tokens.every((t) => t.basic));
      assert.ok(proxy.stats.tokens.some((t) => t.scopes.includes(`repository:${repo}:pull,push`)));
      const tokensBefore = proxy.stats.tokens.length;

      await new Promise((r) => setTimeout(r, 2100)); // the token expires
      const mounted = await pushFromLayout(
        c,
        image.dir,
        undefined,
        parseReference(`${proxy.host}/${repo}-copy:v1`),
        {
          mountFrom: [repo],
        },
      );
      assert.equal(mounted.blobs.mounted, 4);
      assert.ok(proxy.stats.tokens.length > tokensBefore);
      assert.ok(
        proxy.stats.tokens.some(
          (t) =>
            t.scopes.includes(`repository:${repo}-copy:pull,push`) &&
            t.scopes.includes(`repository:${repo}:pull`),
        ),
      );
      assert.equal(await rawDigest(`${tb.registry}/${repo}-copy:v1`), image.digest);
      const remote = await fetchImage(c, parseReference(`${proxy.host}/${repo}:v1`));
      assert.equal(remote.manifest.digest, image.digest);
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  test('after a revoked token, each scope is refused once, also when the challenge orders its actions push,pull', async () => {
    const proxy = await startFaultProxy(tb.registry, {
      bearer: { username: user, password, pushFirst: true },
    });
    const c = client({ DOCKER_CONFIG: await dockerConfigFor(proxy.host, user, password) });
    const repo = `cogts-test/revoked-${run}`;
    const ref = parseReference(`${proxy.host}/${repo}:v1`);
    try {
      await pushFromLayout(c, image.dir, undefined, ref, { concurrency: 1 });
      const second = await writeLayout(await tempDir('cogts-reg-revoked-'), {
        layerSizes: [1000, 2000, 3000, 4000],
        seed: `revoked-${run}`,
      });
      proxy.revokeTokens();
      const before = proxy.stats.unauthorized;
      const result = await pushFromLayout(c, second.dir, undefined, ref, { concurrency: 1 });
      assert.equal(result.digest, second.digest);
      // one 401 for the pull scope (HEAD), one for pull+push (the first upload); a token renewed under
      // the challenge's spelling only would leave every later upload request a 401 and a replay
      assert.equal(proxy.stats.unauthorized - before, 2);
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  test('uploads refused together for a revoked token share one new token', async () => {
    const proxy = await startFaultProxy(tb.registry, { bearer: { username: user, password } });
    const c = client({ DOCKER_CONFIG: await dockerConfigFor(proxy.host, user, password) });
    const ref = parseReference(`${proxy.host}/cogts-test/revoked-together-${run}:v1`);
    try {
      await pushFromLayout(c, image.dir, undefined, ref, { concurrency: 5 });
      const second = await writeLayout(await tempDir('cogts-reg-revoked-together-'), {
        layerSizes: [1000, 2000, 3000, 4000, 5000, 6000],
        seed: `revoked-together-${run}`,
      });
      proxy.revokeTokens();
      const tokensBefore = proxy.stats.tokens.length;
      const unauthorizedBefore = proxy.stats.unauthorized;
      const result = await pushFromLayout(c, second.dir, undefined, ref, { concurrency: 5 });
      assert.equal(result.digest, second.digest);
      assert.ok(proxy.stats.unauthorized - unauthorizedBefore >= 2, 'the revoked tokens were refused');
      // one new token per scope (pull for the manifest HEAD, pull+push for the uploads), however many
      // uploads the revoked one was refused for
      const renewed = proxy.stats.tokens.slice(tokensBefore);
      assert.equal(renewed.length, 2, JSON.stringify(renewed.map((t) => t.scopes)));
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  test('a token service without the OAuth2 POST (404) gets the identity token by GET, and is not POSTed to again', async () => {
    const identityToken = `idt-${randomBytes(8).toString('hex')}`;
    const proxy = await startFaultProxy(tb.registry, {
      bearer: { username: user, password, identityToken, noOAuthPost: true },
    });
    const cfg = await tempDir('cogts-reg-idt-get-');
    await writeFile(
      join(cfg, 'config.json'),
      JSON.stringify({ auths: { [proxy.host]: { identitytoken: identityToken } } }),
    );
    const c = client({ DOCKER_CONFIG: cfg });
    try {
      const ref = parseReference(`${proxy.host}/cogts-test/idt-get-${run}:v1`);
      const result = await pushFromLayout(c, image.dir, undefined, ref);
      assert.equal(result.digest, image.digest);
      const tokenRequests = proxy.stats.requests.filter((r) => r.path.startsWith('/token'));
      assert.deepEqual(
        tokenRequests.filter((r) => r.method === 'POST').map((r) => r.status),
        [404],
        'one POST, answered 404; every later token by GET',
      );
      assert.ok(proxy.stats.tokens.length > 1, 'more than one scope was asked for');
      assert.ok(proxy.stats.tokens.every((t) => t.refresh && !t.basic));
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  test('an identity token from config.json is exchanged (POST, refresh_token grant); revoked tokens are renewed on 401', async () => {
    const identityToken = `idt-${randomBytes(8).toString('hex')}`;
    const proxy = await startFaultProxy(tb.registry, { bearer: { username: user, password, identityToken } });
    const cfg = await tempDir('cogts-reg-idt-');
    await writeFile(
      join(cfg, 'config.json'),
      JSON.stringify({ auths: { [proxy.host]: { identitytoken: identityToken } } }),
    );
    const c = client({ DOCKER_CONFIG: cfg });
    const repo = `cogts-test/idt-${run}`;
    try {
      const result = await pushFromLayout(
        c,
        image.dir,
        undefined,
        parseReference(`${proxy.host}/${repo}:v1`),
      );
      assert.equal(result.digest, image.digest);
      assert.ok(proxy.stats.tokens.length > 0 && proxy.stats.tokens.every((t) => t.refresh));
      proxy.revokeTokens();
      const unauthorized = proxy.stats.unauthorized;
      const remote = await fetchImage(c, parseReference(`${proxy.host}/${repo}:v1`));
      assert.equal(remote.manifest.digest, image.digest);
      assert.ok(proxy.stats.unauthorized > unauthorized, 'the revoked token was refused once');
    } finally {
      await c.close();
      await proxy.close();
    }
  });
});
