// `cog push` in model (bundle) mode on the test bed: the hello fixture with `model:` in cog.yaml pushes
// its image as `repo:cog-image.<tag>` and an OCI index holding only that image as `repo:<tag>` (as skopeo
// reads them back); the image carries a UUIDv7 run.cog.push_id, so every push is a new image; a push
// without COG_MODEL_TAG gets a timestamp tag; IMAGE on the command line and a `weights:` stanza are
// refused before anything is built; `cog inspect` shows the bundle's image labels.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { ImageStore, refNameAnnotation } from '../../src/image/store.js';
import { type ExecResult, exec, execOk } from '../support/exec.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const hello = join(repoRoot, 'fixtures', 'models', 'hello');
const tempDir = tempDirsRemovedAfterTests();
const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
let tb: Testbed;
let store: string;
let noCreds: string;
let project: string;
let repo: string;

before(async () => {
  tb = await ensureTestbed();
  store = join(await tempDir('cogts-bundle-store-'), 'store');
  noCreds = await tempDir('cogts-bundle-nocfg-');
  project = await tempDir('cogts-bundle-hello-');
  await cp(hello, project, { recursive: true });
  repo = `${tb.registry}/cogts/bundle-${run}`;
  await appendFile(join(project, 'cog.yaml'), `model: ${repo}\n`);
});

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...tb.env, COG_IMAGE_STORE: store, DOCKER_CONFIG: noCreds };
  for (const name of [
    'COG_REGISTRY_USERNAME',
    'COG_REGISTRY_PASSWORD',
    'BUILDKIT_PROGRESS',
    'COG_MODEL',
    'COG_MODEL_REGISTRY',
    'COG_MODEL_REPO',
    'COG_MODEL_TAG',
  ])
    delete base[name];
  return { ...base, ...extra };
}

const cogIn = (cwd: string, args: string[], extra: NodeJS.ProcessEnv = {}) =>
  exec(cog, args, { cwd, env: env(extra) });

const explain = (r: ExecResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

async function skopeo(args: string[]): Promise<string> {
  return (await execOk('skopeo', ['inspect', '--tls-verify=false', ...args], { env: tb.env })).stdout;
}
const sha256 = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

interface Index {
  schemaVersion: number;
  mediaType: string;
  manifests: {
    mediaType: string;
    digest: string;
    size: number;
    platform: { os: string; architecture: string };
  }[];
}

/** Pushes the project as a bundle; checks stdout and the tree; returns the digests. */
async function pushBundle(extra: NodeJS.ProcessEnv): Promise<{ tag: string; index: string; image: string }> {
  const r = await cogIn(project, ['push', '--progress', 'plain'], extra);
  assert.equal(r.code, 0, explain(r));
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  const m = new RegExp(`^${repo.replace(/[.]/g, '\\.')}:([\\w.-]+)@(sha256:[0-9a-f]{64})$`).exec(last);
  assert.ok(m, `stdout ends with repo:tag@index digest: ${last}`);
  const image = new RegExp(`^└── image ${repo.replace(/[.]/g, '\\.')}@(sha256:[0-9a-f]{64})$`, 'm').exec(
    r.stderr,
  );
  assert.ok(image?.[1], explain(r));
  assert.ok(r.stderr.includes(`model ${repo}@${m[2]}\n`), explain(r));
  return { tag: m[1]!, index: m[2]!, image: image[1] };
}

describe('cog push with model: in cog.yaml', () => {
  let first: { tag: string; index: string; image: string };
  let pushId: string;

  test('pushes the image as cog-image.<tag> and an index holding only it as <tag>', async () => {
    const started = Date.now();
    first = await pushBundle({ COG_MODEL_TAG: 'v1' });
    process.stderr.write(`# cog push (bundle) of hello: ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    assert.equal(first.tag, 'v1');
    const rawIndex = await skopeo(['--raw', `docker://${repo}:v1`]);
    assert.equal(sha256(rawIndex), first.index, 'the printed digest is the index the registry serves');
    const index = JSON.parse(rawIndex) as Index;
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(index.manifests.length, 1);
    const rawImage = await skopeo(['--raw', `docker://${repo}:cog-image.v1`]);
    assert.equal(index.manifests[0]!.digest, sha256(rawImage));
    assert.equal(index.manifests[0]!.digest, first.image);
    assert.equal(index.manifests[0]!.size, Buffer.byteLength(rawImage));
    assert.equal(index.manifests[0]!.mediaType, (JSON.parse(rawImage) as { mediaType: string }).mediaType);
    assert.deepEqual(index.manifests[0]!.platform, { architecture: 'amd64', os: 'linux' });

    const config = JSON.parse(await skopeo(['--config', `docker://${repo}:cog-image.v1`])) as {
      config: { Labels: Record<string, string> };
    };
    pushId = config.config.Labels['run.cog.push_id'] ?? '';
    assert.match(pushId, uuidV7);
    assert.equal(
      (JSON.parse(config.config.Labels['run.cog.config'] ?? '{}') as { model?: string }).model,
      repo,
    );
  });

  test('cog inspect <repo>:<tag> shows the bundle image and its labels', async () => {
    const empty = join(await tempDir('cogts-bundle-empty-'), 'store');
    const r = await cogIn(project, ['inspect', '--json', `${repo}:v1`], { COG_IMAGE_STORE: empty });
    assert.equal(r.code, 0, explain(r));
    const parsed = JSON.parse(r.stdout) as {
      digest: string;
      manifestDigest: string;
      source: string;
      platform: string;
      labels: Record<string, string>;
    };
    assert.equal(parsed.source, 'registry');
    assert.equal(parsed.digest, first.index);
    assert.equal(parsed.manifestDigest, first.image);
    assert.equal(parsed.platform, 'linux/amd64');
    assert.equal(parsed.labels['run.cog.push_id'], pushId);
    assert.ok(parsed.labels['run.cog.config']);
    const human = await cogIn(project, ['inspect', `${repo}:v1`], { COG_IMAGE_STORE: empty });
    assert.equal(human.code, 0, explain(human));
    assert.match(human.stdout, /^Output: string$/m);
  });

  test('a push without COG_MODEL_TAG gets a timestamp tag and a new push id, so a new image', async () => {
    const second = await pushBundle({});
    assert.match(second.tag, /^\d{8}T\d{6}Z$/);
    assert.notEqual(second.image, first.image);
    const config = JSON.parse(await skopeo(['--config', `docker://${repo}:cog-image.${second.tag}`])) as {
      config: { Labels: Record<string, string> };
    };
    const id = config.config.Labels['run.cog.push_id'] ?? '';
    assert.match(id, uuidV7);
    assert.notEqual(id, pushId);
    // the first tag still names the first index
    assert.equal(sha256(await skopeo(['--raw', `docker://${repo}:v1`])), first.index);
    // the local store files the build as :latest, not under the generated tag
    const local = new ImageStore(store);
    assert.equal((await local.resolve(`${repo}:latest`))?.digest, second.image);
    assert.equal(await local.resolve(`${repo}:${second.tag}`), undefined);
    const third = await pushBundle({});
    assert.equal((await local.resolve(`${repo}:latest`))?.digest, third.image, 'replaced by the next push');
    const names = (await local.index()).manifests.map((m) => m.annotations?.[refNameAnnotation]);
    assert.equal(names.filter((n) => n?.startsWith(`${repo}:`)).length, 2, names.join(', '));
  });

  test('IMAGE on the command line is refused before building', async () => {
    const r = await cogIn(project, ['push', `${repo}:other`]);
    assert.equal(r.code, 1, explain(r));
    assert.match(
      r.stderr,
      /'model' in cog\.yaml makes this a model bundle push, which takes no IMAGE argument/,
    );
    assert.ok(!/Image built as/.test(r.stderr), 'nothing was built');
    assert.equal(r.stdout, '');
  });

  test('COG_MODEL_TAG with the reserved cog- prefix is refused, naming the variable', async () => {
    const r = await cogIn(project, ['push'], { COG_MODEL_TAG: 'cog-image.v1' });
    assert.equal(r.code, 1, explain(r));
    assert.match(r.stderr, /COG_MODEL_TAG "cog-image\.v1": the tag .* is reserved/);
  });

  test('a weights: stanza is refused before building, naming the field', async () => {
    const dir = await tempDir('cogts-bundle-weights-');
    await cp(project, dir, { recursive: true });
    await appendFile(
      join(dir, 'cog.yaml'),
      'weights:\n  - name: base\n    target: /weights/base\n    source:\n      uri: hf://org/repo\n',
    );
    const r = await cogIn(dir, ['push']);
    assert.equal(r.code, 1, explain(r));
    assert.match(r.stderr, /cog\.yaml: weights: managed weights are not supported by cog push yet/);
    assert.ok(!/Image built as/.test(r.stderr), 'nothing was built');
  });

  test('a registry that refuses the index: the error says what landed and what was not written', async () => {
    const proxy = await startFaultProxy(tb.registry, { faults: { refuseIndexes: true } });
    try {
      const name = `cogts/bundle-noindex-${run}`;
      const target = `${proxy.host}/${name}`;
      const r = await cogIn(project, ['push'], { COG_MODEL: `${target}:v1` });
      assert.equal(r.code, 1, explain(r));
      assert.match(r.stderr, /OCI index not supported/);
      const quoted = target.replace(/[.]/g, '\\.');
      const landed = new RegExp(
        `the image landed as ${quoted}:cog-image\\.v1@(sha256:[0-9a-f]{64}), but ${quoted}:v1 was not written`,
      ).exec(r.stderr);
      assert.ok(landed?.[1], explain(r));
      // the registry holds what the message says: the image under cog-image.v1, nothing under v1
      const image = await skopeo(['--raw', `docker://${tb.registry}/${name}:cog-image.v1`]);
      assert.equal(sha256(image), landed[1]);
      const missing = await exec(
        'skopeo',
        ['inspect', '--tls-verify=false', `docker://${tb.registry}/${name}:v1`],
        {
          env: tb.env,
        },
      );
      assert.notEqual(missing.code, 0, missing.stdout);
    } finally {
      await proxy.close();
    }
  });
});
