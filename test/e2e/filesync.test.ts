// Local directories reach buildkitd through our FileSync service: contents arrive intact, and a second
// transfer after a one-file change sends only what changed.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BuildkitClient } from '../../src/buildkit/client.js';
import { fileSyncService } from '../../src/buildkit/filesync.js';
import { Session } from '../../src/buildkit/session.js';
import { solve } from '../../src/buildkit/solve.js';
import { image, local } from '../../src/llb/index.js';
import { ensureTestbed } from '../support/testbed.js';

let client: BuildkitClient;

before(async () => {
  const tb = await ensureTestbed();
  client = await BuildkitClient.connect(tb.buildkitHost);
});

after(() => client.close());

const files: Record<string, Buffer> = {
  'a.txt': Buffer.from('alpha\n'),
  empty: Buffer.alloc(0),
  'dir/b.txt': Buffer.from('beta\n'),
  'dir/sub/c.bin': randomBytes(300_000),
  'dir.txt': Buffer.from('sorts after dir/ byte-wise\n'),
  'bin/run.sh': Buffer.from('#!/bin/sh\necho run\n'),
};

async function writeContext(dir: string): Promise<void> {
  for (const [path, data] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), data);
  }
  await chmod(join(dir, 'bin/run.sh'), 0o755);
  await symlink('a.txt', join(dir, 'link'));
  await writeChecksums(dir);
}

/** expected.sha256 in `sha256sum -c` format, over every regular file but itself */
async function writeChecksums(dir: string): Promise<void> {
  const lines: string[] = [];
  for (const path of Object.keys(files).sort()) {
    const data = await readFile(join(dir, path));
    lines.push(`${createHash('sha256').update(data).digest('hex')}  ${path}`);
  }
  await writeFile(join(dir, 'expected.sha256'), `${lines.join('\n')}\n`);
}

/** Solves a graph that mounts the context and verifies it inside the container; returns the files sent. */
async function verifyInContainer(dir: string, sharedKey: string): Promise<string[]> {
  const requested: string[] = [];
  const session = Session.start(
    client,
    [fileSyncService({ context: dir }, { onFileRequested: (p) => requested.push(p) })],
    sharedKey,
  );
  try {
    const context = local('context', { sharedKeyHint: 'filesync-test' });
    const checked = image('python:3.11-slim')
      .run({
        shell:
          'cd /ctx && sha256sum -c --quiet expected.sha256 && test -L link && test "$(readlink link)" = a.txt && test -x bin/run.sh && test ! -s empty',
        mounts: [{ type: 'bind', dest: '/ctx', source: context, readonly: true }],
        ignoreCache: true,
      })
      .root();
    await solve(client, {
      definition: checked.marshal({ localUniqueId: 'filesync-test-client' }).definition,
      session,
    });
  } finally {
    session.close();
  }
  return requested.sort();
}

describe('FileSync: local directories sent to buildkitd', { timeout: 300_000 }, () => {
  test('contents, modes and symlinks arrive intact; a second transfer sends only the changed file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cogts-ctx-'));
    await writeContext(dir);
    const sharedKey = `filesync-${Date.now()}`;
    const first = await verifyInContainer(dir, sharedKey);
    assert.deepEqual(first, [...Object.keys(files), 'expected.sha256'].sort());

    files['dir/b.txt'] = Buffer.from('beta, changed\n');
    await writeFile(join(dir, 'dir/b.txt'), files['dir/b.txt']);
    await writeChecksums(dir);
    const second = await verifyInContainer(dir, sharedKey);
    assert.deepEqual(second, ['dir/b.txt', 'expected.sha256']);
  });

  test('a context that does not match its checksums fails the build (the check can fail)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cogts-ctx-'));
    await writeContext(dir);
    await writeFile(join(dir, 'a.txt'), 'tampered\n');
    await assert.rejects(
      verifyInContainer(dir, `filesync-bad-${Date.now()}`),
      /did not complete successfully/,
    );
  });
});
