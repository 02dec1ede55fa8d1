// `cog push` and `cog inspect` on the test bed: the hello fixture built and pushed through a counting
// proxy in front of the plain registry reads back with the same digest in skopeo; a second push uploads
// no blob, a push to another repository mounts; a push through 500 and 429 answers prints a retry line
// for each and still lands; the htpasswd registry refuses without credentials (with a `cog login` hint)
// and accepts them, never echoing the password; inspect reads labels, config and schema from the
// registry and the local store, and refuses a non-Cog image.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, readFile, truncate, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { type AddressInfo, type Socket, createServer as createNetServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type ExecResult, exec, execOk } from '../support/exec.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { basicAuth, writeDockerLogin } from '../support/docker-config.js';
import { stepsFromPlainProgress } from '../support/plain-steps.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const hello = join(repoRoot, 'fixtures', 'models', 'hello');
const tempDir = tempDirsRemovedAfterTests();
const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
let tb: Testbed;
let store: string;
let noCreds: string;

before(async () => {
  tb = await ensureTestbed();
  store = join(await tempDir('cogts-push-store-'), 'store');
  noCreds = await tempDir('cogts-push-nocfg-');
});

/** The test bed's environment with our store and no ambient registry credentials. */
function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...tb.env, COG_IMAGE_STORE: store, DOCKER_CONFIG: noCreds };
  delete base.COG_REGISTRY_USERNAME;
  delete base.COG_REGISTRY_PASSWORD;
  delete base.BUILDKIT_PROGRESS;
  return { ...base, ...extra };
}

const cogIn = (cwd: string, args: string[], extra: NodeJS.ProcessEnv = {}) =>
  exec(cog, args, { cwd, env: env(extra) });

function explain(r: ExecResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

async function pushOk(
  target: string,
  extra: NodeJS.ProcessEnv = {},
): Promise<ExecResult & { digest: string }> {
  const r = await cogIn(hello, ['push', target, '--progress', 'plain'], extra);
  assert.equal(r.code, 0, explain(r));
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  const match = /@(sha256:[0-9a-f]{64})$/.exec(last);
  assert.ok(match?.[1], `stdout ends with the pushed reference and digest: ${last}`);
  assert.ok(last.startsWith(`${target}@`), last);
  return { ...r, digest: match[1] };
}

async function rawDigest(ref: string, creds?: string): Promise<string> {
  const { stdout } = await execOk(
    'skopeo',
    ['inspect', '--raw', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), `docker://${ref}`],
    { env: tb.env },
  );
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}

/** blob and manifest bytes the proxy received (a blob up to the multipart threshold goes in one PUT) */
const bodyBytes = (proxy: FaultProxy) =>
  (proxy.stats.bodyBytes.PATCH ?? 0) + (proxy.stats.bodyBytes.PUT ?? 0);

const uploads = (proxy: FaultProxy) =>
  proxy.stats.requests.filter(
    (r) => r.method === 'POST' && r.path.includes('/blobs/uploads/') && !r.path.includes('mount='),
  ).length;

describe('cog push to the plain registry', () => {
  let proxy: FaultProxy;
  let digest: string;
  const repo = `cogts-push/hello-${run}`;
  before(async () => {
    proxy = await startFaultProxy(tb.registry);
  });
  after(async () => {
    await proxy.close();
  });

  test('pushes the built fixture; skopeo reads back the printed digest and copies it', async () => {
    const started = Date.now();
    const r = await pushOk(`${proxy.host}/${repo}:v1`);
    digest = r.digest;
    const seconds = (Date.now() - started) / 1000;
    const sent = bodyBytes(proxy);
    process.stderr.write(`# cog push (build + push) of hello: ${seconds.toFixed(1)}s, ${sent} bytes sent\n`);
    assert.match(r.stderr, /^pushing sha256:[0-9a-f]{12} /m);
    assert.match(
      r.stderr,
      /^pushed {2}sha256:[0-9a-f]{12} .* in \d+\.\ds \(\d+(\.\d)? (B|KiB|MiB|GiB)\/s\)$/m,
    );
    assert.match(r.stderr, /Pushed \d+ blobs \(\d+ uploaded, 0 already there, 0 mounted\)/);
    assert.equal(await rawDigest(`${tb.registry}/${repo}:v1`), digest);
    const out = await tempDir('cogts-push-copy-');
    await execOk(
      'skopeo',
      ['copy', '-q', '--src-tls-verify=false', `docker://${tb.registry}/${repo}:v1`, `oci:${out}:x`],
      { env: tb.env },
    );
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    assert.equal(index.manifests[0]?.digest, digest);
  });

  test('pushing the same image again uploads no blob, over a few kept-alive connections', async () => {
    const before = uploads(proxy);
    const sent = bodyBytes(proxy);
    const connections = proxy.stats.connections;
    const r = await pushOk(`${proxy.host}/${repo}:v2`);
    assert.equal(r.digest, digest);
    const heads = Number(/(\d+) already there/.exec(r.stderr)?.[1]);
    // a ping, 9 HEADs and the manifest PUT: the client's pool holds at most 8 connections to a registry,
    // and a connection closed after each HEAD would take 10 or more
    const opened = proxy.stats.connections - connections;
    process.stderr.write(`# second cog push: ${heads} HEADs over ${opened} connections\n`);
    assert.ok(heads >= 9, r.stderr);
    assert.ok(opened <= 9, `${opened} connections for ${heads} HEADs`);
    assert.equal(uploads(proxy), before);
    assert.ok(bodyBytes(proxy) - sent < 10_000, 'only the manifest went up');
    assert.match(r.stderr, /^exists {2}sha256:/m);
    assert.match(r.stderr, /\(0 uploaded, \d+ already there, 0 mounted\)/);
    assert.equal(await rawDigest(`${tb.registry}/${repo}:v2`), digest);
  });

  test('pushing to a second repository mounts instead of uploading', async () => {
    const before = uploads(proxy);
    const sent = bodyBytes(proxy);
    const sibling = `cogts-push/sibling-${run}`;
    const r = await pushOk(`${proxy.host}/${sibling}:v1`);
    assert.equal(r.digest, digest);
    assert.equal(uploads(proxy), before);
    assert.ok(bodyBytes(proxy) - sent < 10_000, 'only the manifest went up');
    assert.ok(proxy.stats.requests.some((q) => q.path.includes(`mount=`) && q.status === 201));
    assert.match(r.stderr, /^mounted sha256:/m);
    assert.match(r.stderr, /\(0 uploaded, 0 already there, \d+ mounted\)/);
    assert.equal(await rawDigest(`${tb.registry}/${sibling}:v1`), digest);
  });

  test('an edited project pushed to a third repository mounts the layers it shares and asks no mount for its new ones', async () => {
    const dir = await tempDir('cogts-push-edited-');
    await cp(hello, dir, { recursive: true });
    await writeFile(
      join(dir, 'predict.py'),
      `${await readFile(join(hello, 'predict.py'), 'utf8')}\n# edited ${run}\n`,
    );
    const mountsBefore = proxy.stats.requests.filter((q) => q.path.includes('mount=')).length;
    const r = await cogIn(dir, ['push', `${proxy.host}/cogts-push/edited-${run}:v1`, '--progress', 'plain']);
    assert.equal(r.code, 0, explain(r));
    const counts = /\((\d+) uploaded, (\d+) already there, (\d+) mounted\)/.exec(r.stderr);
    assert.ok(counts, r.stderr);
    // the source layer and the config are new; every other layer is mounted from an earlier push
    assert.equal(Number(counts[1]), 2, r.stderr);
    assert.ok(Number(counts[3]) > 0, r.stderr);
    const mounts = proxy.stats.requests.filter((q) => q.path.includes('mount=')).slice(mountsBefore);
    assert.equal(mounts.filter((q) => q.status === 202).length, 0, 'no mount was tried for a new blob');
  });

  test('cog inspect reads the pushed image from the registry without the local store', async () => {
    const ref = `${tb.registry}/${repo}:v1`;
    const empty = join(await tempDir('cogts-push-empty-'), 'store');
    const human = await cogIn(hello, ['inspect', ref], { COG_IMAGE_STORE: empty });
    assert.equal(human.code, 0, explain(human));
    assert.match(human.stdout, new RegExp(`^Digest: +${digest}$`, 'm'));
    assert.match(human.stdout, /^Source: +registry$/m);
    assert.match(human.stdout, /^Platform: +linux\/amd64$/m);
    assert.match(human.stdout, /^Python: +3\.11$/m);
    assert.match(human.stdout, /^ {2}name: string = "world" — Who to greet$/m);
    assert.match(human.stdout, /^Output: string$/m);

    // a proxy address cog cannot use is no matter for a registry on this machine, which is never proxied
    // (as docker and skopeo take it); for one elsewhere the same setting is refused, naming the variable
    const socks = {
      COG_IMAGE_STORE: empty,
      HTTP_PROXY: 'socks5://127.0.0.1:1',
      HTTPS_PROXY: 'socks5://127.0.0.1:1',
    };
    const direct = await cogIn(hello, ['inspect', '--remote', ref], socks);
    assert.equal(direct.code, 0, explain(direct));
    assert.match(direct.stdout, new RegExp(`^Digest: +${digest}$`, 'm'));
    const elsewhere = await cogIn(hello, ['inspect', '--remote', 'registry.example/a/b:c'], socks);
    assert.equal(elsewhere.code, 1, explain(elsewhere));
    assert.match(elsewhere.stderr, /^cog: error: HTTPS_PROXY is not a proxy address cog can use$/m);

    // in neither place: the error says the local store was looked in first
    const absentRef = `${tb.registry}/${repo}:absent`;
    const absent = await cogIn(hello, ['inspect', absentRef], { COG_IMAGE_STORE: empty });
    assert.equal(absent.code, 1, explain(absent));
    assert.ok(
      absent.stderr.startsWith(`cog: error: ${absentRef} is not in the local image store; its registry: `),
      explain(absent),
    );
    assert.match(absent.stderr, /404/);

    // a platform the image is not for is an error, not the image there is (a bare architecture is
    // Linux's, and x86_64 is amd64, as buildx reads them)
    const arm = await cogIn(hello, ['inspect', '--platform', 'arm64', ref], { COG_IMAGE_STORE: empty });
    assert.equal(arm.code, 1, explain(arm));
    assert.match(arm.stderr, /is an image for linux\/amd64, not linux\/arm64/);
    const x86 = await cogIn(hello, ['inspect', '--json', '--platform', 'linux/x86_64', ref], {
      COG_IMAGE_STORE: empty,
    });
    assert.equal(x86.code, 0, explain(x86));
    assert.equal((JSON.parse(x86.stdout) as { digest: string }).digest, digest);
    const odd = await cogIn(hello, ['inspect', '--platform', 'linux/amd64/v1/x', ref], {
      COG_IMAGE_STORE: empty,
    });
    assert.equal(odd.code, 1, explain(odd));
    assert.match(odd.stderr, /--platform linux\/amd64\/v1\/x is not os\/architecture\[\/variant\]/);

    const json = await cogIn(hello, ['inspect', '--json', ref], { COG_IMAGE_STORE: empty });
    assert.equal(json.code, 0, explain(json));
    const parsed = JSON.parse(json.stdout) as {
      reference: string;
      digest: string;
      source: string;
      size: number;
      platform: string;
      labels: Record<string, string>;
      config: { predict?: string; build?: { python_version?: string } };
      openapiSchema: { components?: { schemas?: Record<string, unknown> } } | null;
      layers: { digest: string; size: number; mediaType: string }[];
    };
    assert.equal(parsed.reference, ref);
    assert.equal(parsed.digest, digest);
    assert.equal(parsed.source, 'registry');
    assert.ok(parsed.size > 1_000_000, `size ${parsed.size}`);
    const layerBytes = parsed.layers.reduce((s, l) => s + l.size, 0);
    assert.ok(parsed.size > layerBytes && parsed.size < layerBytes + 100_000, 'layers plus the config');
    assert.ok(parsed.labels['run.cog.config']);
    assert.equal(parsed.config.predict, 'predict.py:Predictor');
    assert.equal(parsed.config.build?.python_version, '3.11');
    assert.ok(parsed.openapiSchema?.components?.schemas?.Input);
    assert.ok(parsed.layers.length > 0 && parsed.layers.every((l) => l.digest.startsWith('sha256:')));
  });

  test('cog inspect --local reads the same image from the local store', async () => {
    const r = await cogIn(hello, ['inspect', '--local', '--json', `${proxy.host}/${repo}:v1`]);
    assert.equal(r.code, 0, explain(r));
    const parsed = JSON.parse(r.stdout) as { source: string; digest: string; reference: string };
    assert.equal(parsed.source, 'local');
    assert.equal(parsed.digest, digest);
    assert.equal(parsed.reference, `${proxy.host}/${repo}:v1`);
    // pinned by digest: the reference printed keeps the digest
    const pinned = await cogIn(hello, ['inspect', '--local', '--json', `${proxy.host}/${repo}:v1@${digest}`]);
    assert.equal(pinned.code, 0, explain(pinned));
    assert.equal(
      (JSON.parse(pinned.stdout) as { reference: string }).reference,
      `${proxy.host}/${repo}:v1@${digest}`,
    );
    const missing = await cogIn(hello, ['inspect', '--local', `${proxy.host}/cogts-push/none-${run}:v1`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no image named .* in the local image store/);
  });
});

describe('cog push through a registry that answers 500 and 429', () => {
  let proxy: FaultProxy;
  before(async () => {
    // the 3rd and 6th requests fail (after the /v2/ pings: the check before the build, and the push's
    // own); every call site retries them
    proxy = await startFaultProxy(tb.registry, { faults: { statusAt: { 3: 500, 6: 429 } } });
  });
  after(async () => {
    await proxy.close();
  });

  test('stderr shows a retry line for each, and the push lands with the right digest', async () => {
    const repo = `cogts-push/retry-${run}`;
    const started = Date.now();
    const r = await pushOk(`${proxy.host}/${repo}:v1`);
    process.stderr.write(
      `# cog push with 2 injected faults: ${((Date.now() - started) / 1000).toFixed(1)}s\n`,
    );
    assert.deepEqual(proxy.stats.faults, { cuts: 0, status500: 1, status429: 1 });
    const retries = r.stderr.split('\n').filter((l) => /; retrying \(\d\/4\) in \d+\.\ds$/.test(l));
    assert.equal(retries.length, 2, explain(r));
    assert.match(
      retries[0]!,
      /^cog: .* answered HTTP 500( \(injected[^)]*\))?; retrying \(1\/4\) in 1\.\ds$/,
    );
    // 429 came with Retry-After: 1, which the wait follows
    assert.match(retries[1]!, /^cog: .* answered HTTP 429( \(injected[^)]*\))?; retrying \(1\/4\) in 1\.0s$/);
    assert.ok(!/^Error|^cog: error/m.test(r.stderr), explain(r));
    assert.equal(await rawDigest(`${tb.registry}/${repo}:v1`), r.digest);
  });
});

describe('COG_PUSH_MULTIPART_THRESHOLD and COG_PUSH_DEFAULT_CHUNK_SIZE on the command line', () => {
  let proxy: FaultProxy;
  before(async () => {
    proxy = await startFaultProxy(tb.registry, {});
  });
  after(async () => {
    await proxy.close();
  });

  test('threshold 0 sends every blob in chunks of the given size; a bad value is named', async () => {
    const repo = `cogts-push/chunks-${run}`;
    const chunk = 4 * 1024 * 1024;
    const r = await pushOk(`${proxy.host}/${repo}:v1`, {
      COG_PUSH_MULTIPART_THRESHOLD: '0',
      COG_PUSH_DEFAULT_CHUNK_SIZE: String(chunk),
      // a store of its own: the shared one remembers pushes to earlier proxies, and one of them may have
      // had this proxy's port (its blobs would then be mounted, not uploaded)
      COG_IMAGE_STORE: join(await tempDir('cogts-push-chunks-store-'), 'store'),
    });
    assert.match(r.stderr, /\(\d+ uploaded, 0 already there, 0 mounted\)/);
    const patches = proxy.stats.requests.filter((q) => q.method === 'PATCH' && q.status === 202).length;
    const uploaded = proxy.stats.bodyBytes.PATCH ?? 0;
    // every byte went up in PATCHes of at most 4 MiB, the base layers (tens of MiB) in many
    assert.ok(uploaded > 8 * chunk, `${uploaded} bytes in PATCHes`);
    assert.ok(patches >= Math.ceil(uploaded / chunk), `${patches} PATCHes for ${uploaded} bytes`);
    assert.ok((proxy.stats.bodyBytes.PUT ?? 0) < 64 * 1024, 'PUT bodies are the manifest, no blob bytes');
    assert.equal(await rawDigest(`${tb.registry}/${repo}:v1`), r.digest);

    const bad = await cogIn(hello, ['push', `${proxy.host}/${repo}:v2`], {
      COG_PUSH_MULTIPART_THRESHOLD: 'lots',
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /COG_PUSH_MULTIPART_THRESHOLD/);
    assert.doesNotMatch(bad.stderr, /Image built as|cog: build /, 'the setting fails before the build');
  });
});

describe('cog push on a terminal', () => {
  test('draws a live view whose total only grows, ends with every layer pushed, and prints the digest', async () => {
    const repo = `cogts-push/tty-${run}`;
    const target = `${tb.registry}/${repo}:v1`;
    // a real pseudo-terminal (util-linux `script`); 4 MiB chunks so the view redraws mid-blob
    const command = `${cog} push ${target} --progress tty`;
    const r = await exec('script', ['-qec', command, '/dev/null'], {
      cwd: hello,
      env: env({ COG_PUSH_MULTIPART_THRESHOLD: '0', COG_PUSH_DEFAULT_CHUNK_SIZE: String(4 * 1024 * 1024) }),
    });
    assert.equal(r.code, 0, explain(r));
    const out = r.stdout;
    const cursorUp = out.split('\x1b[').some((part) => /^\d+A/.test(part));
    assert.ok(cursorUp, 'the view moves the cursor up to redraw');
    const units: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
    const bytes = (value: string, unit: string) => Number(value) * (units[unit] ?? Number.NaN);
    const totals = [
      ...out.matchAll(/Pushing \S+ +([\d.]+) (B|KiB|MiB|GiB) \/ ([\d.]+) (B|KiB|MiB|GiB)/g),
    ].map((m) => ({ done: bytes(m[1]!, m[2]!), total: bytes(m[3]!, m[4]!) }));
    assert.ok(totals.length >= 2, `${totals.length} frames`);
    assert.ok(
      totals.some((t) => t.done < t.total),
      'a frame drawn mid-push shows part of the total',
    );
    for (let i = 1; i < totals.length; i++)
      assert.ok(totals[i]!.done >= totals[i - 1]!.done, `frame ${i}: the total never goes back`);
    const last = totals.at(-1)!;
    assert.equal(last.done, last.total, 'the last frame shows everything pushed');
    const finalFrame = out.slice(out.lastIndexOf('Pushing '));
    const layerLines = finalFrame.split(/\r?\n/).filter((l) => /^\s*sha256:[0-9a-f]{12}/.test(l));
    assert.ok(layerLines.length >= 5, `${layerLines.length} layer lines`);
    for (const line of layerLines) assert.match(line, /\bpushed\b/);
    const digest = /@(sha256:[0-9a-f]{64})/.exec(out.slice(out.lastIndexOf(target)))?.[1];
    assert.equal(digest, await rawDigest(target));
  });
});

describe('Ctrl-C during cog push', () => {
  test('stops the push (exit 130, saying it cancels the push) and asks the registry to drop its uploads', async () => {
    const proxy = await startFaultProxy(tb.registry);
    try {
      const child = spawn(
        cog,
        ['push', `${proxy.host}/cogts-push/interrupted-${run}:v1`, '--progress', 'plain'],
        {
          cwd: hello,
          // small chunks and a store of its own: the push is still uploading when the first chunk lands
          env: env({
            COG_PUSH_MULTIPART_THRESHOLD: '0',
            COG_PUSH_DEFAULT_CHUNK_SIZE: String(1024 * 1024),
            COG_IMAGE_STORE: join(await tempDir('cogts-push-int-store-'), 'store'),
          }),
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      const chunkLanded = () => proxy.stats.requests.some((q) => q.method === 'PATCH' && q.status === 202);
      for (let waited = 0; !chunkLanded(); waited += 20) {
        assert.ok(waited < 300_000, `no chunk landed:\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      child.kill('SIGINT');
      const code = await exited;
      assert.equal(code, 130, stderr);
      assert.match(stderr, /SIGINT: cancelling the push/);
      assert.match(stderr, /interrupted \(SIGINT\): the push was cancelled/);
      // distribution may refuse a DELETE whose state a cut chunk outran; it is asked either way
      assert.ok(
        proxy.stats.requests.some((q) => q.method === 'DELETE' && q.path.includes('/blobs/uploads/')),
        JSON.stringify(proxy.stats.requests.map((q) => `${q.method} ${q.status}`)),
      );
    } finally {
      await proxy.close();
    }
  });
});

describe('cog push behind a request-body limit', () => {
  test('layers refused as too large (413) go up in smaller chunks, with a note saying why', async () => {
    const proxy = await startFaultProxy(tb.registry, { faults: { bodyLimit: 8 * 1024 * 1024 } });
    try {
      const repo = `cogts-push/limit-${run}`;
      const r = await pushOk(`${proxy.host}/${repo}:v1`, {
        COG_IMAGE_STORE: join(await tempDir('cogts-push-limit-store-'), 'store'),
      });
      const notes = r.stderr.split('\n').filter((l) => /refused a request as too large \(HTTP 413/.test(l));
      assert.equal(notes.length, 1, explain(r));
      assert.match(notes[0]!, /blobs go up in chunks of \d+\.\d MiB from now on/);
      assert.ok(proxy.stats.requests.some((q) => q.status === 413));
      assert.equal(await rawDigest(`${tb.registry}/${repo}:v1`), r.digest);
    } finally {
      await proxy.close();
    }
  });
});

describe('cog push to a registry that refuses chunked uploads', () => {
  let proxy: FaultProxy;
  before(async () => {
    proxy = await startFaultProxy(tb.registry, { faults: { refuseChunks: true } });
  });
  after(async () => {
    await proxy.close();
  });

  test('each refused chunk is followed by the whole blob in one PATCH; the image reads back the same', async () => {
    const repo = `cogts-push/nochunks-${run}`;
    const r = await pushOk(`${proxy.host}/${repo}:v1`, {
      COG_PUSH_MULTIPART_THRESHOLD: '0',
      COG_PUSH_DEFAULT_CHUNK_SIZE: String(4 * 1024 * 1024),
    });
    const patches = proxy.stats.requests.filter((q) => q.method === 'PATCH');
    const refused = patches.filter((q) => q.status === 416).length;
    const accepted = patches.filter((q) => q.status === 202).length;
    assert.ok(refused >= 5, `${refused} chunked PATCHes refused`);
    assert.equal(accepted, refused, 'one whole-blob PATCH per refused blob');
    // the refused chunks cost at most one chunk per blob on top of the blobs themselves
    const sent = proxy.stats.bodyBytes.PATCH ?? 0;
    const { stdout } = await execOk(
      'skopeo',
      ['inspect', '--raw', '--tls-verify=false', `docker://${tb.registry}/${repo}:v1`],
      {
        env: tb.env,
      },
    );
    const manifest = JSON.parse(stdout) as { config: { size: number }; layers: { size: number }[] };
    const blobs = manifest.config.size + manifest.layers.reduce((sum, l) => sum + l.size, 0);
    assert.ok(sent >= blobs, `${sent} bytes in PATCHes, ${blobs} in blobs`);
    assert.ok(sent <= blobs + refused * 4 * 1024 * 1024, `${sent} bytes in PATCHes, ${blobs} in blobs`);
    assert.equal(await rawDigest(`${tb.registry}/${repo}:v1`), r.digest);
  });
});

describe('cog push to the htpasswd registry', () => {
  const repo = `cogts-push/auth-${run}`;

  test('without credentials it fails before building, naming the registry, with a cog login hint', async () => {
    const r = await cogIn(hello, ['push', `${tb.authRegistry}/${repo}:v1`, '--progress', 'plain']);
    assert.notEqual(r.code, 0, explain(r));
    assert.match(
      r.stderr,
      /cog push IMAGE: 127\.0\.0\.1:5056 requires authentication to push to 127\.0\.0\.1:5056\//,
    );
    assert.match(r.stderr, /^hint: .*`cog login 127\.0\.0\.1:5056`.*nothing was built/m);
    assert.deepEqual(stepsFromPlainProgress(r.stderr).ran, [], 'no build step ran');
    assert.equal(r.stdout, '');
  });

  test('cog build --push with credentials the registry refuses fails before building, naming neither', async () => {
    const cfg = await writeDockerLogin(
      await tempDir('cogts-push-cfg-'),
      tb.authRegistry,
      tb.authUser,
      'not-the-password-77',
    );
    const r = await cogIn(
      hello,
      ['build', '--push', '-t', `${tb.authRegistry}/${repo}:v9`, '--progress', 'plain'],
      { DOCKER_CONFIG: cfg },
    );
    assert.notEqual(r.code, 0, explain(r));
    assert.match(
      r.stderr,
      /-t: 127\.0\.0\.1:5056 rejected the credentials for pushing to 127\.0\.0\.1:5056\/.*\n^hint: log in again with `cog login 127\.0\.0\.1:5056`.*nothing was built/m,
    );
    assert.deepEqual(stepsFromPlainProgress(r.stderr).ran, [], 'no build step ran');
    assert.ok(!r.stderr.includes('not-the-password-77'));
  });

  test('with credentials in DOCKER_CONFIG it pushes, and the password appears nowhere', async () => {
    const cfg = await writeDockerLogin(
      await tempDir('cogts-push-cfg-'),
      tb.authRegistry,
      tb.authUser,
      tb.authPassword,
    );
    const auth = basicAuth(tb.authUser, tb.authPassword);
    const r = await pushOk(`${tb.authRegistry}/${repo}:v1`, { DOCKER_CONFIG: cfg });
    for (const secret of [tb.authPassword, auth]) {
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'no credential in the output');
    }
    assert.equal(
      await rawDigest(`${tb.authRegistry}/${repo}:v1`, `${tb.authUser}:${tb.authPassword}`),
      r.digest,
    );
  });

  test('COG_REGISTRY_USERNAME / COG_REGISTRY_PASSWORD work too', async () => {
    const r = await pushOk(`${tb.authRegistry}/${repo}:v2`, {
      COG_REGISTRY_USERNAME: tb.authUser,
      COG_REGISTRY_PASSWORD: tb.authPassword,
    });
    assert.ok(!r.stdout.includes(tb.authPassword) && !r.stderr.includes(tb.authPassword));
    assert.match(r.stderr, /\(0 uploaded/);
  });

  test('… and for cog build --push, where buildkitd asks for them (for the destination only)', async () => {
    const r = await cogIn(
      hello,
      ['build', '--push', '-t', `${tb.authRegistry}/${repo}:v3`, '--progress', 'quiet'],
      {
        COG_REGISTRY_USERNAME: tb.authUser,
        COG_REGISTRY_PASSWORD: tb.authPassword,
      },
    );
    assert.equal(r.code, 0, explain(r));
    assert.ok(!r.stdout.includes(tb.authPassword) && !r.stderr.includes(tb.authPassword));
  });

  test('… and for cog build -o type=image,push=true, whose name is the only push destination', async () => {
    const target = `${tb.authRegistry}/${repo}:v4`;
    const r = await cogIn(
      hello,
      ['build', '-o', `type=image,name=${target},push=true`, '--progress', 'quiet'],
      {
        COG_REGISTRY_USERNAME: tb.authUser,
        COG_REGISTRY_PASSWORD: tb.authPassword,
      },
    );
    assert.equal(r.code, 0, explain(r));
    assert.ok(!r.stdout.includes(tb.authPassword) && !r.stderr.includes(tb.authPassword));
    const digest = /^Image built as \S+@(sha256:[0-9a-f]{64})/m.exec(r.stderr)?.[1];
    assert.equal(await rawDigest(target, `${tb.authUser}:${tb.authPassword}`), digest);
  });
});

describe('a registry whose refusals echo the credentials it was sent', () => {
  const password = `echo-pw-${run}`;
  const basic = basicAuth('ann', password);
  let echo: { host: string; close(): Promise<void> };
  before(async () => {
    // Basic auth; refuses every repository request after the ping with what it was sent in the detail
    const server = createHttpServer((req, res) => {
      req.resume();
      const auth = req.headers.authorization ?? '';
      if (!auth) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="echo"' });
        return res.end();
      }
      if (req.url === '/v2/' || req.method === 'HEAD') {
        res.writeHead(req.url === '/v2/' ? 200 : 404);
        return res.end();
      }
      const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString();
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          errors: [{ code: 'DENIED', message: 'refused', detail: `for ${auth} (${decoded})` }],
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    echo = {
      host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  });
  after(async () => {
    await echo.close();
  });

  const creds = () => ({ COG_REGISTRY_USERNAME: 'ann', COG_REGISTRY_PASSWORD: password });
  const assertMasked = (r: ExecResult) => {
    for (const secret of [password, basic.replace(/^Basic /, '')])
      assert.ok(
        !r.stdout.includes(secret) && !r.stderr.includes(secret),
        `a credential shows:\n${explain(r)}`,
      );
    assert.match(r.stderr, /^cog: error: .*refused.*for Basic \*\*\*/m, explain(r));
  };

  test('cog inspect shows the refusal with the credentials masked', async () => {
    const r = await cogIn(hello, ['inspect', '--remote', `${echo.host}/a/b:v1`], creds());
    assert.equal(r.code, 1, explain(r));
    assertMasked(r);
  });

  test('cog push too', async () => {
    const r = await cogIn(hello, ['push', `${echo.host}/a/b:v1`, '--progress', 'plain'], creds());
    assert.equal(r.code, 1, explain(r));
    assertMasked(r);
  });

  test('cog build --push too, where buildkitd pushes and passes the refusal on (in the progress too)', async () => {
    const r = await cogIn(
      hello,
      ['build', '--push', '-t', `${echo.host}/a/b:v1`, '--progress', 'plain', '--debug'],
      creds(),
    );
    assert.equal(r.code, 1, explain(r));
    assertMasked(r);
    assert.match(r.stderr, /ERROR: .*for Basic \*\*\*/, 'the step that failed says it masked');
  });
});

describe('a layer cut short in the local image store', () => {
  test('cog push names every image that uses it; removing them and pushing again mends the store', async () => {
    const own = { COG_IMAGE_STORE: join(await tempDir('cogts-push-damaged-'), 'store') };
    const target = `${tb.registry}/cogts-push/damaged-${run}:v1`;
    const other = `cogts-damaged-${run}:other`;
    await pushOk(target, own);
    const built = await cogIn(hello, ['build', '-t', other, '--progress', 'quiet'], own);
    assert.equal(built.code, 0, explain(built));
    // the image's last layer, cut to half its size
    const blobs = join(own.COG_IMAGE_STORE, 'blobs', 'sha256');
    const index = JSON.parse(await readFile(join(own.COG_IMAGE_STORE, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    const manifest = JSON.parse(
      await readFile(join(blobs, index.manifests[0]!.digest.slice('sha256:'.length)), 'utf8'),
    ) as { layers: { digest: string; size: number }[] };
    const layer = manifest.layers.at(-1)!;
    await truncate(join(blobs, layer.digest.slice('sha256:'.length)), Math.floor(layer.size / 2));

    const failed = await cogIn(hello, ['push', target, '--progress', 'plain'], own);
    assert.equal(failed.code, 1, explain(failed));
    assert.match(failed.stderr, new RegExp(`blob ${layer.digest} in .* it is damaged \\(cut short\\)`));
    const hint = /^hint: remove the images that use it \(`cog image rm ([^`]+)`/m.exec(failed.stderr);
    assert.deepEqual(hint?.[1]?.split(' ').sort(), [target, other].sort(), explain(failed));

    const removed = await cogIn(hello, ['image', 'rm', ...hint![1]!.split(' ')], own);
    assert.equal(removed.code, 0, explain(removed));
    await pushOk(target, own);
  });
});

describe('a manifest cut short in the local image store', () => {
  test('cog push of its image (and a build making the same image) names the blob damaged and the image to remove, not a collection error', async () => {
    const own = { COG_IMAGE_STORE: join(await tempDir('cogts-push-damaged-manifest-'), 'store') };
    const target = `${tb.registry}/cogts-push/damaged-manifest-${run}:v1`;
    const { digest } = await pushOk(target, own);
    const file = join(own.COG_IMAGE_STORE, 'blobs', 'sha256', digest.slice('sha256:'.length));
    const whole = await readFile(file, 'utf8');
    await writeFile(file, whole.slice(0, Math.floor(whole.length / 2)));

    for (const args of [
      ['push', target, '--progress', 'plain'],
      // another name: the build makes the same manifest, which the store already holds, damaged
      ['build', '-t', `cogts-damaged-manifest-${run}:other`, '--progress', 'plain'],
    ]) {
      const failed = await cogIn(hello, args, own);
      assert.equal(failed.code, 1, explain(failed));
      assert.match(
        failed.stderr,
        new RegExp(
          `^cog: error: blob ${digest} of the image built as \\S+ in the local image store is not JSON \\(.+\\): it is damaged$`,
          'm',
        ),
        explain(failed),
      );
      assert.match(
        failed.stderr,
        new RegExp(
          `^hint: remove the images that use it \\(\`cog image rm ${target.replace(/[.]/g, '\\.')}\`, which drops blobs no image uses\\), then build again; a build alone keeps the damaged copy$`,
          'm',
        ),
        explain(failed),
      );
      assert.doesNotMatch(failed.stderr, /no unused blob was removed/, explain(failed));
    }

    const removed = await cogIn(hello, ['image', 'rm', target], own);
    assert.equal(removed.code, 0, explain(removed));
    const again = await pushOk(target, own);
    assert.equal(again.digest, digest, 'the same image, whole again');
  });
});

describe('cog push and cog inspect refusals', () => {
  test('no IMAGE and no image in cog.yaml: an error naming the image option', async () => {
    const dir = await tempDir('cogts-push-noimage-');
    await cp(hello, dir, { recursive: true });
    const r = await cogIn(dir, ['push']);
    assert.equal(r.code, 1, explain(r));
    assert.match(r.stderr, /cog push needs an image name/);
    assert.match(r.stderr, /^hint: set the 'image' option in cog\.yaml/m);
  });

  test('cog build -o type=image,name=REF,push=true names REF in its line and its metadata file', async () => {
    const dir = await tempDir('cogts-push-output-image-');
    const target = `${tb.registry}/cogts-push/output-image-${run}:v1`;
    const metadata = join(dir, 'metadata.json');
    const r = await cogIn(hello, [
      'build',
      '-o',
      `type=image,name=${target},push=true`,
      '--metadata-file',
      metadata,
    ]);
    assert.equal(r.code, 0, explain(r));
    // it said the build's own name (cog-hello), which nothing wrote
    assert.match(
      r.stderr,
      new RegExp(`^Image built as ${target.replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64}`, 'm'),
    );
    const written = JSON.parse(await readFile(metadata, 'utf8')) as Record<string, string>;
    assert.equal(written['image.name'], target);
    const inspected = JSON.parse(
      (await execOk('skopeo', ['inspect', '--tls-verify=false', `docker://${target}`])).stdout,
    ) as { Digest: string };
    assert.equal(inspected.Digest, written['containerimage.digest']);
  });

  test('cog build --push with no -t and no image in cog.yaml fails before building', async () => {
    const dir = await tempDir('cogts-push-nodest-');
    await cp(hello, dir, { recursive: true });
    const r = await cogIn(dir, ['build', '--push']);
    assert.equal(r.code, 1, explain(r));
    assert.match(r.stderr, /--push needs a destination: cog\.yaml names no image, and no -t was given/);
    assert.doesNotMatch(r.stderr, /buildkitd|\[\d+\/\d+\]/, 'nothing was built');
  });

  test('cog build --push with no -t pushes to an -o type=image,name=REF,push=true output', async () => {
    const dir = await tempDir('cogts-push-nodest-output-');
    await cp(hello, dir, { recursive: true });
    const target = `${tb.registry}/cogts-push/nodest-output-${run}:v1`;
    const r = await cogIn(dir, ['build', '--push', '-o', `type=image,name=${target},push=true`]);
    assert.equal(r.code, 0, explain(r));
    assert.doesNotMatch(r.stderr, /needs a destination/);
    const digest = /^Image built as \S+@(sha256:[0-9a-f]{64})/m.exec(r.stderr)?.[1];
    assert.ok(digest, explain(r));
    const inspected = JSON.parse(
      (await execOk('skopeo', ['inspect', '--tls-verify=false', `docker://${target}`])).stdout,
    ) as { Digest: string };
    assert.equal(inspected.Digest, digest);
    // an image output that does not push is still no destination for --push
    const local = await cogIn(dir, ['build', '--push', '-o', `type=image,name=${target}`]);
    assert.equal(local.code, 1, explain(local));
    assert.match(local.stderr, /--push needs a destination/);
    assert.match(local.stderr, /^hint: .*-o type=image,name=REGISTRY\/REPO\[:TAG\],push=true/m);
  });

  test('a digest as the destination fails before building, for cog push and cog build --push', async () => {
    const digest = `sha256:${'d'.repeat(64)}`;
    const target = `${tb.registry}/cogts-push/pinned-${run}@${digest}`;
    const pushed = await cogIn(hello, ['push', target]);
    assert.equal(pushed.code, 1, explain(pushed));
    assert.match(pushed.stderr, /cog push IMAGE: cannot push to .*@sha256:d{64}: it names a digest/);
    assert.match(pushed.stderr, new RegExp(`^hint: .*pinned-${run}:latest`, 'm'));
    assert.doesNotMatch(pushed.stderr, /buildkitd|\[\d+\/\d+\]/, 'nothing was built');
    const built = await cogIn(hello, ['build', '--push', '-t', target]);
    assert.equal(built.code, 1, explain(built));
    assert.match(built.stderr, /-t: cannot push to .*: it names a digest/);
  });

  test('a registry that drops every connection: three pings over both schemes, then one error', async () => {
    let connections = 0;
    const server = createNetServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const r = await cogIn(hello, ['inspect', '--remote', `127.0.0.1:${port}/x/y:v1`]);
      assert.equal(r.code, 1, explain(r));
      assert.match(r.stderr, /cannot reach 127\.0\.0\.1:\d+ over plain HTTP or HTTPS/);
      // retry loops around the ping do not try it again: 3 × (HTTP, HTTPS), not 5 × 5 × 2
      assert.equal(connections, 6);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('cog build --push to a registry that takes connections and never answers fails before building, naming it', async () => {
    const sockets: Socket[] = [];
    const server = createNetServer((socket) => {
      sockets.push(socket); // held open, never answered
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const started = Date.now();
    try {
      const r = await cogIn(hello, ['build', '--push', '-t', `${registry}/cogts-push/silent:v1`]);
      assert.equal(r.code, 1, explain(r));
      assert.match(
        r.stderr,
        new RegExp(
          `^cog: error: -t: cannot push to ${registry}: ${registry} did not answer GET http://${registry}/v2/ within 10 s$`,
          'm',
        ),
      );
      assert.match(r.stderr, /^hint: .*takes connections but does not answer.*nothing was built/m);
      assert.match(r.stderr, /retrying \(1\/2\)[^]*retrying \(2\/2\)/, 'each retry is said');
      assert.doesNotMatch(r.stderr, /cog: build \S+ on/, 'no solve was started');
      // three pings of 10 s: as long as cog push waits, not for ever
      assert.ok(Date.now() - started < 60_000, `gave up after ${Date.now() - started} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('image in cog.yaml is the default target', async () => {
    const dir = await tempDir('cogts-push-yamlimage-');
    await cp(hello, dir, { recursive: true });
    const target = `${tb.registry}/cogts-push/yaml-${run}:latest`;
    const yaml = await readFile(join(dir, 'cog.yaml'), 'utf8');
    await writeFile(join(dir, 'cog.yaml'), `${yaml}image: ${target}\n`);
    const r = await cogIn(dir, ['push', '--progress', 'quiet']);
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout.trim(), new RegExp(`^${target.replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64}$`));
    // the store has it under NAME:latest; NAME alone names the same image, as for docker
    const local = await cogIn(dir, ['inspect', '--local', target.replace(/:latest$/, '')]);
    assert.equal(local.code, 0, explain(local));
    const bad = await cogIn(dir, ['inspect', '--local', 'not a ref!!']);
    assert.equal(bad.code, 1, explain(bad));
    assert.match(bad.stderr, /invalid image reference "not a ref!!"/);
  });

  test('inspecting a non-Cog image fails with a hint', async () => {
    for (const args of [[], ['--json']]) {
      const r = await cogIn(hello, ['inspect', ...args, `${tb.registry}/library/python:3.11-slim`]);
      assert.equal(r.code, 1, explain(r));
      assert.match(r.stderr, /is not a Cog model image \(it has no run\.cog\.config label\)/);
      assert.match(r.stderr, /^hint: .*skopeo inspect/m);
      assert.equal(r.stdout, '');
    }
  });
});
