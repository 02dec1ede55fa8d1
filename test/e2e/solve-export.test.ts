// A Definition built by our API, solved through our own client, exported to the registry.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BuildkitClient } from '../../src/buildkit/client.js';
import { Session } from '../../src/buildkit/session.js';
import { solve } from '../../src/buildkit/solve.js';
import { image } from '../../src/llb/index.js';
import { execOk } from '../support/exec.js';
import { ensureTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
let client: BuildkitClient;

before(async () => {
  tb = await ensureTestbed();
  client = await BuildkitClient.connect(tb.buildkitHost);
});

after(() => client.close());

test('image exporter pushes to the registry with the config we give', { timeout: 300_000 }, async () => {
  const ref = `${tb.registry}/cogts-test/solve-export:${Date.now().toString(36)}`;
  const built = image('python:3.11-slim').run({ shell: 'echo exported > /exported.txt' }).root();
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: {
      Env: ['PATH=/usr/local/bin:/usr/bin:/bin'],
      Cmd: ['python'],
      Labels: { 'run.cog.test': 'yes' },
    },
  };
  const session = Session.start(client);
  let response: Record<string, string>;
  try {
    ({ exporterResponse: response } = await solve(client, {
      definition: built.marshal().definition,
      session,
      exporters: [
        {
          Type: 'image',
          Attrs: {
            name: ref,
            push: 'true',
            'registry.insecure': 'true',
            'containerimage.config': JSON.stringify(config),
          },
        },
      ],
    }));
  } finally {
    session.close();
  }
  assert.match(response['containerimage.digest'] ?? '', /^sha256:[0-9a-f]{64}$/);
  const inspected = JSON.parse(
    (await execOk('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).stdout,
  ) as {
    Digest: string;
    Labels: Record<string, string>;
  };
  assert.equal(inspected.Digest, response['containerimage.digest']);
  assert.equal(inspected.Labels['run.cog.test'], 'yes');
});
