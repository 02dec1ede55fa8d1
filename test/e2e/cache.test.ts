// Cache export and import: a fresh daemon reuses a step built elsewhere through registry and inline caches.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { before, test } from 'node:test';
import { BuildkitClient } from '../../src/buildkit/client.js';
import { connectBuildkit } from '../../src/buildkit/daemon.js';
import { Session } from '../../src/buildkit/session.js';
import { solve } from '../../src/buildkit/solve.js';
import type { moby_buildkit_v1_CacheOptionsEntry, pb_Definition } from '../../src/gen/types.js';
import { image } from '../../src/llb/index.js';
import { pushedConfig } from '../support/pushed-image.js';
import { ensureTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;

before(async () => {
  tb = await ensureTestbed();
});

interface Built {
  readonly cachedSteps: Set<string>;
  readonly stepNames: Set<string>;
}

async function build(
  client: BuildkitClient,
  definition: pb_Definition,
  imageRef: string,
  cache: { exports?: moby_buildkit_v1_CacheOptionsEntry[]; imports?: moby_buildkit_v1_CacheOptionsEntry[] },
): Promise<Built> {
  const cachedSteps = new Set<string>();
  const stepNames = new Set<string>();
  const session = Session.start(client);
  try {
    await solve(client, {
      definition,
      session,
      exporters: [{ Type: 'image', Attrs: { name: imageRef, push: 'true', 'registry.insecure': 'true' } }],
      ...(cache.exports ? { cacheExports: cache.exports } : {}),
      ...(cache.imports ? { cacheImports: cache.imports } : {}),
      onStatus: (s) => {
        for (const v of s.vertexes ?? []) {
          stepNames.add(v.name ?? '');
          if (v.cached) cachedSteps.add(v.name ?? '');
        }
      },
    });
  } finally {
    session.close();
  }
  return { cachedSteps, stepNames };
}

async function diffIds(ref: string): Promise<string[]> {
  const config = await pushedConfig<{ rootfs: { diff_ids: string[] } }>(ref);
  return config.rootfs.diff_ids;
}

/** A daemon with an empty cache: the CLI's private buildkitd, started with the test bed's registry config. */
async function freshDaemon(state: string) {
  const env: NodeJS.ProcessEnv = {
    ...tb.env,
    XDG_STATE_HOME: state,
    TMPDIR: state,
    COG_BUILDKITD_CONFIG: join(tb.stateDir, 'buildkitd.toml'),
  };
  delete env.BUILDKIT_HOST;
  return connectBuildkit({ env, stderr: new PassThrough() });
}

test(
  'registry and inline cache built on one daemon are reused by a fresh one',
  { timeout: 600_000 },
  async () => {
    const tag = Date.now().toString(36);
    // the step writes random bytes: equal layers afterwards can only come from the cache
    const stepName = `random bytes ${tag}`;
    const definition = image('python:3.11-slim')
      .run({ shell: `head -c 32 /dev/urandom | od -An -tx1 > /random-${tag}`, name: stepName })
      .root()
      .marshal().definition;
    const cacheRef = `${tb.registry}/cogts-test/cache:${tag}`;
    const firstRef = `${tb.registry}/cogts-test/cache-image:${tag}-first`;

    const client = await BuildkitClient.connect(tb.buildkitHost);
    try {
      const first = await build(client, definition, firstRef, {
        exports: [
          { Type: 'registry', Attrs: { ref: cacheRef, mode: 'max', 'registry.insecure': 'true' } },
          { Type: 'inline', Attrs: {} },
        ],
      });
      assert.ok(
        first.stepNames.has(stepName) && !first.cachedSteps.has(stepName),
        'the first build runs the step',
      );
    } finally {
      client.close();
    }
    const firstLayers = await diffIds(firstRef);

    for (const [kind, importRef] of [
      ['registry', cacheRef],
      ['inline', firstRef],
    ] as const) {
      const state = await mkdtemp(join(tmpdir(), `cogts-cache-${kind}-`));
      const connection = await freshDaemon(state);
      try {
        assert.equal(connection.privateDaemon, true);
        const secondRef = `${tb.registry}/cogts-test/cache-image:${tag}-${kind}`;
        const second = await build(connection.client, definition, secondRef, {
          imports: [{ Type: 'registry', Attrs: { ref: importRef, 'registry.insecure': 'true' } }],
        });
        assert.ok(second.cachedSteps.has(stepName), `${kind} cache: the step is CACHED on the fresh daemon`);
        assert.deepEqual(await diffIds(secondRef), firstLayers, `${kind} cache: same layers`);
      } finally {
        await connection.close();
        await rm(state, { recursive: true, force: true });
      }
    }
  },
);
