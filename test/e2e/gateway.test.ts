// The gateway path: resolve a base image config through the daemon, read a built file, export with metadata.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BuildkitClient } from '../../src/buildkit/client.js';
import { gatewayBuild } from '../../src/buildkit/gateway.js';
import { Session } from '../../src/buildkit/session.js';
import { image } from '../../src/llb/index.js';
import { pushedConfig } from '../support/pushed-image.js';
import { ensureTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
let client: BuildkitClient;

before(async () => {
  tb = await ensureTestbed();
  client = await BuildkitClient.connect(tb.buildkitHost);
});

after(() => client.close());

test(
  'a build function resolves, reads and returns one image with its config',
  { timeout: 300_000 },
  async () => {
    const tag = Date.now().toString(36);
    const ref = `${tb.registry}/cogts-test/gateway:${tag}`;
    const session = Session.start(client);
    let baseEnv: string[] = [];
    let readBack = '';
    try {
      const result = await gatewayBuild(
        client,
        {
          session,
          exporters: [{ Type: 'image', Attrs: { name: ref, push: 'true', 'registry.insecure': 'true' } }],
        },
        async (gw) => {
          const base = await gw.resolveImageConfig('docker.io/library/python:3.11-slim', {
            platform: { OS: 'linux', Architecture: 'amd64' },
          });
          assert.match(base.digest, /^sha256:[0-9a-f]{64}$/);
          baseEnv = base.config.config?.Env ?? [];
          const built = image('python:3.11-slim')
            .run({ shell: `python3 -c "import sys; print(sys.version.split()[0])" > /version-${tag}.txt` })
            .root();
          const id = await gw.solve(built.marshal().definition, { evaluate: true });
          readBack = (await gw.readFile(id, `/version-${tag}.txt`)).toString().trim();
          assert.equal(await gw.exists(id, `/version-${tag}.txt`), true);
          assert.equal(await gw.exists(id, `/absent-${tag}`), false);
          const config = {
            ...base.config,
            config: { ...base.config.config, Labels: { 'run.cog.test-version': readBack } },
          };
          return { ref: id, metadata: { 'containerimage.config': JSON.stringify(config) } };
        },
      );
      assert.match(result.exporterResponse['containerimage.digest'] ?? '', /^sha256:/);
    } finally {
      session.close();
    }
    assert.ok(
      baseEnv.some((e) => e.startsWith('PYTHON_VERSION=3.11')),
      baseEnv.join(' '),
    );
    assert.match(readBack, /^3\.11\.\d+$/);
    const pushed = await pushedConfig<{ config: { Labels: Record<string, string>; Env: string[] } }>(ref);
    assert.equal(pushed.config.Labels['run.cog.test-version'], readBack);
    assert.deepEqual(pushed.config.Env, baseEnv);
  },
);

test(
  'an error thrown by the build function fails the build with that error',
  { timeout: 120_000 },
  async () => {
    const session = Session.start(client);
    try {
      await assert.rejects(
        gatewayBuild(client, { session }, async (gw) => {
          await gw.resolveImageConfig('docker.io/library/python:3.11-slim');
          throw new Error('predict.py: no class Predictor');
        }),
        /predict\.py: no class Predictor/,
      );
    } finally {
      session.close();
    }
  },
);
