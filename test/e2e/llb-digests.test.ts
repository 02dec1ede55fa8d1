// The LLB corpus solved on the real daemon: the vertex digests buildkitd reports (it re-marshals every op
// the Go way) must equal the digests we computed, which proves byte-identical encoding.
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BuildkitClient } from '../../src/buildkit/client.js';
import { Session } from '../../src/buildkit/session.js';
import { solve } from '../../src/buildkit/solve.js';
import { codec } from '../../src/proto/schema.js';
import { type ExampleInputs, examples } from '../../src/llb/examples.js';
import { execOk } from '../support/exec.js';
import { serveGitRepo, serveText } from '../support/servers.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

let tb: Testbed;
let client: BuildkitClient;
let inputs: ExampleInputs;
const closers: (() => unknown)[] = [];

before(async () => {
  tb = await ensureTestbed();
  client = await BuildkitClient.connect(tb.buildkitHost);
  const httpServer = await serveText(`served at ${Date.now()}\n`);
  const gitServer = await serveGitRepo();
  closers.push(
    () => httpServer.close(),
    () => gitServer.close(),
    () => client.close(),
  );
  inputs = { httpUrl: httpServer.url, gitUrl: gitServer.url };
});

after(async () => {
  for (const close of closers) await close();
});

const platform = { OS: 'linux', Architecture: 'amd64' };

describe('LLB corpus on buildkitd', { timeout: 600_000 }, () => {
  test('the corpus covers every op kind, file action and mount type', () => {
    const seen = new Set<string>();
    for (const example of examples) {
      for (const op of example.build(inputs).marshal({ platform }).ops) {
        seen.add(op.kind);
        if (op.op.source?.identifier) seen.add(`source:${op.op.source.identifier.split(':')[0]}`);
        for (const action of op.op.file?.actions ?? []) {
          for (const kind of ['copy', 'mkfile', 'mkdir', 'rm', 'symlink'] as const)
            if (action[kind]) seen.add(`file:${kind}`);
        }
        for (const mount of op.op.exec?.mounts ?? [])
          seen.add(`mount:${mount.mountType ?? 0}${mount.readonly ? ':ro' : ''}`);
      }
    }
    const expected = [
      'source',
      'exec',
      'file',
      'merge',
      'diff',
      'source:docker-image',
      'source:http',
      'source:git',
      'file:copy',
      'file:mkfile',
      'file:mkdir',
      'file:rm',
      'file:symlink',
      'mount:0',
      'mount:0:ro',
      'mount:1',
      'mount:2',
      'mount:3',
      'mount:4',
    ];
    for (const kind of expected) assert.ok(seen.has(kind), `corpus lacks ${kind}`);
    assert.ok(examples.length >= 20);
  });

  for (const example of examples) {
    test(`${example.name}: daemon digests equal ours`, async () => {
      const marshalled = example.build(inputs).marshal({ platform });
      const reported = new Map<string, string>();
      const errors: string[] = [];
      const session = Session.start(client);
      try {
        await solve(client, {
          definition: marshalled.definition,
          session,
          entitlements: example.entitlements ?? [],
          onStatus: (status) => {
            for (const v of status.vertexes ?? []) {
              if (v.digest) reported.set(v.digest, v.name ?? '');
              if (v.error) errors.push(`${v.name}: ${v.error}`);
            }
          },
        });
      } finally {
        session.close();
      }
      assert.deepEqual(errors, []);
      for (const op of marshalled.ops.slice(0, -1)) {
        assert.ok(
          reported.has(op.digest),
          `daemon did not report our ${op.kind} op ${op.digest}; it reported:\n${[...reported].join('\n')}`,
        );
      }
    });
  }

  test('`cog debug llb` writes Definitions that `buildctl debug dump-llb` reads, with the same digests', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cogts-llb-'));
    for (const example of examples) {
      const file = join(dir, `${example.name}.def`);
      const args = [
        'debug',
        'llb',
        '--example',
        example.name,
        '--http-url',
        inputs.httpUrl,
        '--git-url',
        inputs.gitUrl,
      ];
      await execOk('bash', ['-c', `"$0" "$@" > ${file}`, `${repoRoot}bin/cog`, ...args], { env: tb.env });
      const dumped = await execOk('bash', ['-c', `buildctl debug dump-llb < ${file}`], { env: tb.env });
      const dumpedDigests = dumped.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { Digest: string }).Digest);
      const ours = example
        .build(inputs)
        .marshal({ platform })
        .ops.map((op) => op.digest);
      assert.deepEqual(dumpedDigests, ours, example.name);
      const written = codec('pb.Definition').decode(await readFile(file));
      assert.equal(written.def?.length, ours.length);
    }
  });
});
