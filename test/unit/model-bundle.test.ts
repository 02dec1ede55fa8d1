// Model bundles: resolving the model reference from `model:` and COG_MODEL* (table-driven, from the
// upstream rules), what a bundle push refuses before building, the index bytes, and the push id.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { checkBundlePush } from '../../src/cli/push.js';
import { CogError } from '../../src/errors.js';
import { buildBundleIndex, bundleTree, uuidV7 } from '../../src/registry/bundle.js';
import {
  bundleImageRef,
  checkBundleDestination,
  resolveModelRef,
  timestampTag,
} from '../../src/registry/model-ref.js';
import { formatReference } from '../../src/registry/reference.js';

const now = new Date('2026-05-08T15:30:42.123Z');
const stamp = '20260508T153042Z';
const digest = `sha256:${'ab'.repeat(32)}`;

interface Case {
  readonly name: string;
  readonly model?: string;
  readonly image?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** the formatted reference, or undefined for "no model reference" */
  readonly want: string | undefined;
  readonly from?: 'COG_MODEL' | 'model' | 'COG_MODEL_REPO';
}

describe('resolveModelRef', () => {
  test('the timestamp tag is UTC YYYYMMDDTHHMMSSZ', () => {
    assert.equal(timestampTag(now), stamp);
    assert.equal(timestampTag(new Date('2026-01-02T03:04:05Z')), '20260102T030405Z');
  });

  const cases: Case[] = [
    { name: 'nothing set: no model reference (single-image push)', want: undefined },
    { name: 'image: alone: no model reference', image: 'r8.im/u/m', want: undefined },
    {
      name: 'model: gets a timestamp tag',
      model: 'r8.im/u/m',
      want: `r8.im/u/m:${stamp}`,
      from: 'model',
    },
    {
      name: 'model: with COG_MODEL_TAG',
      model: 'r8.im/u/m',
      env: { COG_MODEL_TAG: 'v1' },
      want: 'r8.im/u/m:v1',
      from: 'model',
    },
    {
      name: 'COG_MODEL_REGISTRY replaces the host only',
      model: 'r8.im/u/m',
      env: { COG_MODEL_REGISTRY: 'localhost:5000', COG_MODEL_TAG: 't' },
      want: 'localhost:5000/u/m:t',
      from: 'model',
    },
    {
      name: 'COG_MODEL_REPO replaces the repository only',
      model: 'r8.im/u/m',
      env: { COG_MODEL_REPO: 'other/thing', COG_MODEL_TAG: 't' },
      want: 'r8.im/other/thing:t',
      from: 'COG_MODEL_REPO',
    },
    {
      name: 'all three parts replaced',
      model: 'r8.im/u/m',
      env: { COG_MODEL_REGISTRY: 'ghcr.io', COG_MODEL_REPO: 'a/b', COG_MODEL_TAG: 'x' },
      want: 'ghcr.io/a/b:x',
      from: 'COG_MODEL_REPO',
    },
    {
      name: 'a bare model: is on Docker Hub',
      model: 'user/model',
      env: { COG_MODEL_TAG: 'v2' },
      want: 'docker.io/user/model:v2',
      from: 'model',
    },
    {
      name: 'no model:, COG_MODEL_REPO: registry defaults to r8.im',
      env: { COG_MODEL_REPO: 'u/m', COG_MODEL_TAG: 'v1' },
      want: 'r8.im/u/m:v1',
      from: 'COG_MODEL_REPO',
    },
    {
      name: 'no model:, COG_MODEL_REPO: registry from COG_REGISTRY_HOST',
      env: { COG_MODEL_REPO: 'u/m', COG_REGISTRY_HOST: 'reg.example:8443' },
      want: `reg.example:8443/u/m:${stamp}`,
      from: 'COG_MODEL_REPO',
    },
    {
      name: 'COG_REGISTRY_HOST does not override a model: host',
      model: 'ghcr.io/u/m',
      env: { COG_REGISTRY_HOST: 'reg.example', COG_MODEL_TAG: 'v' },
      want: 'ghcr.io/u/m:v',
      from: 'model',
    },
    {
      name: 'COG_MODEL wins over everything else',
      model: 'r8.im/u/m',
      env: { COG_MODEL: 'localhost:5000/x/y:z', COG_MODEL_TAG: 'ignored', COG_MODEL_REPO: 'ignored/too' },
      want: 'localhost:5000/x/y:z',
      from: 'COG_MODEL',
    },
    {
      name: 'COG_MODEL without a tag gets a timestamp',
      env: { COG_MODEL: 'localhost:5000/x/y' },
      want: `localhost:5000/x/y:${stamp}`,
      from: 'COG_MODEL',
    },
    {
      name: 'COG_MODEL "latest" is a tag given, not added',
      env: { COG_MODEL: 'r8.im/u/m:latest' },
      want: 'r8.im/u/m:latest',
      from: 'COG_MODEL',
    },
    {
      name: 'COG_MODEL with a digest passes through (push refuses it later)',
      env: { COG_MODEL: `r8.im/u/m@${digest}` },
      want: `r8.im/u/m@${digest}`,
      from: 'COG_MODEL',
    },
    {
      name: 'empty variables count as unset',
      model: 'r8.im/u/m',
      env: { COG_MODEL: '', COG_MODEL_TAG: '  ' },
      want: `r8.im/u/m:${stamp}`,
      from: 'model',
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = resolveModelRef({ model: c.model ?? null, image: c.image ?? null, env: c.env ?? {}, now });
      if (c.want === undefined) {
        assert.equal(got, undefined);
        return;
      }
      assert.ok(got);
      assert.equal(formatReference(got.ref), c.want);
      assert.equal(got.from, c.from);
      assert.equal(got.timestampTag, c.want.endsWith(stamp));
    });
  }

  test('COG_MODEL says which other COG_MODEL_* variables it leaves unused (for the warning)', () => {
    const got = resolveModelRef({
      model: null,
      image: null,
      env: { COG_MODEL: 'localhost:5000/x/y', COG_MODEL_TAG: 'v9', COG_MODEL_REPO: 'a/b' },
      now,
    });
    assert.deepEqual(got?.ignored, ['COG_MODEL_REPO', 'COG_MODEL_TAG']);
    assert.equal(
      resolveModelRef({ model: null, image: null, env: { COG_MODEL: 'localhost:5000/x/y' }, now })?.ignored,
      undefined,
    );
  });

  const errors: { name: string; model?: string; image?: string; env: NodeJS.ProcessEnv; message: RegExp }[] =
    [
      {
        name: 'image: with COG_MODEL_TAG names both',
        image: 'r8.im/u/m',
        env: { COG_MODEL_TAG: 'v1' },
        message: /cog\.yaml sets 'image', which cannot be combined with COG_MODEL_TAG/,
      },
      {
        name: 'image: with COG_MODEL names both',
        image: 'r8.im/u/m',
        env: { COG_MODEL: 'r8.im/u/m:v' },
        message: /'image'.*COG_MODEL/,
      },
      {
        name: 'COG_MODEL_TAG reserved prefix',
        model: 'r8.im/u/m',
        env: { COG_MODEL_TAG: 'cog-x' },
        message: /COG_MODEL_TAG "cog-x".*reserved/,
      },
      {
        name: 'COG_MODEL_TAG malformed',
        model: 'r8.im/u/m',
        env: { COG_MODEL_TAG: '.bad' },
        message: /COG_MODEL_TAG ".bad": .*not a valid tag/,
      },
      {
        // the image goes to cog-image.<tag>: 10 more characters, within the registry's 128
        name: 'COG_MODEL_TAG too long for its bundle image',
        model: 'r8.im/u/m',
        env: { COG_MODEL_TAG: 'a'.repeat(119) },
        message: /COG_MODEL_TAG "a{119}": the tag is 119 characters; a model's tag has at most 118/,
      },
      {
        name: 'COG_MODEL with a tag too long for its bundle image',
        env: { COG_MODEL: `r8.im/u/m:${'b'.repeat(120)}` },
        message: /COG_MODEL .*at most 118/,
      },
      {
        name: 'COG_MODEL with a reserved tag',
        env: { COG_MODEL: 'r8.im/u/m:cog-image.v1' },
        message: /COG_MODEL .*reserved/,
      },
      {
        name: 'COG_MODEL malformed',
        env: { COG_MODEL: 'r8.im/U/M' },
        message: /COG_MODEL "r8\.im\/U\/M".*lower-case/,
      },
      {
        name: 'COG_MODEL_REGISTRY with a path',
        model: 'r8.im/u/m',
        env: { COG_MODEL_REGISTRY: 'ghcr.io/x' },
        message: /COG_MODEL_REGISTRY "ghcr\.io\/x" is not a registry host/,
      },
      {
        name: 'COG_MODEL_REGISTRY not a host',
        model: 'r8.im/u/m',
        env: { COG_MODEL_REGISTRY: 'notahost' },
        message: /COG_MODEL_REGISTRY "notahost" is not a registry host/,
      },
      {
        name: 'COG_MODEL_REPO with a tag',
        model: 'r8.im/u/m',
        env: { COG_MODEL_REPO: 'a/b:v1' },
        message: /COG_MODEL_REPO "a\/b:v1" must be a bare repository/,
      },
      {
        name: 'COG_MODEL_REPO with a host',
        model: 'r8.im/u/m',
        env: { COG_MODEL_REPO: 'ghcr.io/a/b' },
        message: /COG_MODEL_REPO "ghcr\.io\/a\/b" must not name a registry/,
      },
      {
        name: 'COG_MODEL_REPO with a host and port',
        model: 'r8.im/u/m',
        env: { COG_MODEL_REPO: '127.0.0.1:5055/a/b' },
        message: /COG_MODEL_REPO "127\.0\.0\.1:5055\/a\/b" must not name a registry \("127\.0\.0\.1:5055"\)/,
      },
      {
        name: 'COG_MODEL_REPO malformed',
        model: 'r8.im/u/m',
        env: { COG_MODEL_REPO: 'A/B' },
        message: /COG_MODEL_REPO "A\/B".*lower-case/,
      },
      {
        name: 'COG_MODEL_TAG with no repository anywhere',
        env: { COG_MODEL_TAG: 'v1' },
        message: /COG_MODEL_TAG is set, but there is no model repository/,
      },
      {
        name: 'model: with a tag',
        model: 'r8.im/u/m:v1',
        env: {},
        message: /model "r8\.im\/u\/m:v1" must be a bare repository/,
      },
    ];
  for (const e of errors) {
    test(`error: ${e.name}`, () => {
      assert.throws(
        () => resolveModelRef({ model: e.model ?? null, image: e.image ?? null, env: e.env, now }),
        (err: unknown) => err instanceof CogError && e.message.test(err.message) && Boolean(err.hint),
      );
    });
  }
});

describe('bundle push checks', () => {
  const resolved = (env: NodeJS.ProcessEnv, model: string | null = 'r8.im/u/m') =>
    resolveModelRef({ model, image: null, env, now })!;
  const config = { configFile: 'cog.yaml', model: 'r8.im/u/m', weights: [] };

  test('a tagged model reference is a destination; its image goes to cog-image.<tag>', () => {
    const r = resolved({ COG_MODEL_TAG: 'v1' });
    checkBundlePush(undefined, config, r);
    assert.equal(formatReference(bundleImageRef(r.ref)), 'r8.im/u/m:cog-image.v1');
  });
  test('the positional IMAGE is rejected, naming where the model came from', () => {
    assert.throws(
      () => checkBundlePush('r8.im/u/m:v9', config, resolved({})),
      (e: CogError) =>
        /'model' in cog\.yaml makes this a model bundle push, which takes no IMAGE/.test(e.message),
    );
    assert.throws(
      () => checkBundlePush('x', config, resolved({ COG_MODEL: 'r8.im/a/b' }, null)),
      /cog push IMAGE: COG_MODEL makes/,
    );
  });
  test('managed weights fail before the build, naming the field', () => {
    assert.throws(
      () => checkBundlePush(undefined, { ...config, weights: [{ name: 'w' }] }, resolved({})),
      /cog\.yaml: weights: managed weights are not supported by cog push yet/,
    );
  });
  test('a digest reference is refused as a destination', () => {
    assert.throws(
      () => checkBundleDestination(resolved({ COG_MODEL: `r8.im/u/m@${digest}` })),
      /cannot push a model to r8\.im\/u\/m@sha256:.*names a digest/,
    );
  });
});

describe('bundle index', () => {
  const image = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 1234,
    digest: `sha256:${'cd'.repeat(32)}`,
  };
  test('schemaVersion 2, OCI index type, the image with its platform, digest over the bytes', () => {
    const index = buildBundleIndex(image, { os: 'linux', architecture: 'amd64' });
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(
      index.bytes.toString('utf8'),
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[' +
        `{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1234,"digest":"${image.digest}",` +
        '"platform":{"architecture":"amd64","os":"linux"}}]}',
    );
    assert.equal(index.digest, `sha256:${createHash('sha256').update(index.bytes).digest('hex')}`);
  });
  test('the platform follows the build (arm64) and the media type follows the registry', () => {
    const docker = { ...image, mediaType: 'application/vnd.docker.distribution.manifest.v2+json' };
    const json = JSON.parse(
      buildBundleIndex(docker, { os: 'linux', architecture: 'arm64' }).bytes.toString('utf8'),
    ) as { manifests: { mediaType: string; platform: { architecture: string } }[] };
    assert.equal(json.manifests.length, 1);
    assert.equal(json.manifests[0]!.platform.architecture, 'arm64');
    assert.equal(json.manifests[0]!.mediaType, docker.mediaType);
  });
  test('the tree names the index, then the image', () => {
    assert.deepEqual(bundleTree('r8.im/u/m', 'sha256:i', 'sha256:m'), [
      'model r8.im/u/m@sha256:i',
      '└── image r8.im/u/m@sha256:m',
    ]);
  });
});

describe('push id (UUIDv7)', () => {
  const v7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  test('version 7, RFC variant, the milliseconds up front', () => {
    const id = uuidV7(Date.UTC(2026, 4, 8, 15, 30, 42, 123), new Uint8Array(10).fill(0xff));
    assert.match(id, v7);
    assert.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), Date.UTC(2026, 4, 8, 15, 30, 42, 123));
    assert.equal(id.slice(14, 18), '7fff');
    assert.equal(id.slice(19, 21), 'bf');
    assert.match(uuidV7(0, new Uint8Array(10)), /^00000000-0000-7000-8000-000000000000$/);
  });
  test('later times sort later', () => {
    const r = new Uint8Array(10).fill(7);
    assert.ok(uuidV7(1_000, r) < uuidV7(1_001, r));
  });
});
