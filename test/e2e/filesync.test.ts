// Local directories reach buildkitd through our FileSync service: contents arrive intact, and a second
// transfer after a one-file change sends only what changed.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BuildkitClient } from '../../src/buildkit/client.js';
import { type TransferRequest, fileSyncService } from '../../src/buildkit/filesync.js';
import { readDockerignore } from '../../src/buildkit/patterns.js';
import { Session } from '../../src/buildkit/session.js';
import { solve } from '../../src/buildkit/solve.js';
import { image, local } from '../../src/llb/index.js';
import { ensureTestbed } from '../support/testbed.js';

let client: BuildkitClient;
const temps: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-ctx-'));
  temps.push(dir);
  return dir;
}

before(async () => {
  const tb = await ensureTestbed();
  client = await BuildkitClient.connect(tb.buildkitHost);
});

after(async () => {
  client.close();
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

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
    const dir = await tempDir();
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
    const dir = await tempDir();
    await writeContext(dir);
    await writeFile(join(dir, 'a.txt'), 'tampered\n');
    await assert.rejects(
      verifyInContainer(dir, `filesync-bad-${Date.now()}`),
      /did not complete successfully/,
    );
  });

  test('include/exclude patterns and follow paths from the local source are applied by the client', async () => {
    const dir = await tempDir();
    const layout: Record<string, string> = {
      '.dockerignore': '# comment\n*.pyc\n/build\n**/__pycache__\n!keep.pyc\nsecret*, with comma\n',
      'app.py': 'print(1)\n',
      'cache.pyc': 'x',
      'keep.pyc': 'kept',
      'build/out.bin': 'b',
      'pkg/mod.py': 'm',
      'pkg/__pycache__/mod.cpython.pyc': 'c',
      'pkg/data/weights.bin': 'w',
      'secret*, with comma': 's',
      'docs/readme.md': 'r',
      'other/file': 'o',
    };
    for (const [path, data] of Object.entries(layout)) {
      await mkdir(join(dir, path, '..'), { recursive: true });
      await writeFile(join(dir, path), data);
    }
    await symlink('../other/file', join(dir, 'docs/link'));
    const exclude = await readDockerignore(dir);
    assert.deepEqual(exclude, ['*.pyc', 'build', '**/__pycache__', '!keep.pyc', 'secret*, with comma']);

    const expected = [
      '.dockerignore',
      'app.py',
      'docs',
      'docs/link',
      'keep.pyc',
      'other',
      'other/file',
      'pkg',
      'pkg/mod.py',
    ];
    const requested: string[] = [];
    const transfers: TransferRequest[] = [];
    const session = Session.start(client, [
      fileSyncService(
        { context: dir },
        { onFileRequested: (p) => requested.push(p), onTransfer: (t) => transfers.push(t) },
      ),
    ]);
    try {
      const context = local('context', {
        include: ['*.py', '*.pyc', '.dockerignore', 'pkg/*.py', 'secret*'],
        exclude,
        followPaths: ['docs/link'],
      });
      const checked = image('python:3.11-slim')
        .run({
          shell: `cd /ctx && find . -mindepth 1 | cut -c3- | LC_ALL=C sort > /tmp/got && printf '%s\\n' ${expected.join(' ')} | diff - /tmp/got && test "$(cat docs/link)" = o`,
          mounts: [{ type: 'bind', dest: '/ctx', source: context, readonly: true }],
          ignoreCache: true,
        })
        .root();
      await solve(client, {
        definition: checked.marshal({ localUniqueId: `filesync-patterns-${Date.now()}` }).definition,
        session,
      });
    } finally {
      session.close();
    }
    assert.equal(transfers.length, 1);
    // the daemon's multi-valued metadata arrives joined by ", ": a pattern holding ", " is split in two
    assert.deepEqual(transfers[0]?.include, ['*.py', '*.pyc', '.dockerignore', 'pkg/*.py', 'secret*']);
    assert.deepEqual(transfers[0]?.exclude, [...exclude.slice(0, -1), 'secret*', 'with comma']);
    assert.deepEqual(transfers[0]?.followPaths, ['docs/link']);
    assert.deepEqual(
      requested.sort(),
      expected.filter((p) => !['docs', 'docs/link', 'other', 'pkg'].includes(p)),
    );
  });

  test('a file that cannot be read when the daemon asks for it fails the build, naming it (no hang)', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'ok.txt'), 'fine\n');
    await writeFile(join(dir, 'vanishing.txt'), 'here at the walk\n');
    const session = Session.start(client, [
      fileSyncService(
        { context: dir },
        {
          // unreadable between the walk and the read, as a file without read permission is
          onFileRequested: (p) => {
            if (p !== 'vanishing.txt') return;
            rmSync(join(dir, p));
            mkdirSync(join(dir, p)); // reading it now fails (EISDIR); a file simply gone arrives empty
          },
        },
      ),
    ]);
    try {
      const checked = image('python:3.11-slim')
        .run({
          shell: 'ls /ctx',
          mounts: [{ type: 'bind', dest: '/ctx', source: local('context'), readonly: true }],
          ignoreCache: true,
        })
        .root();
      await assert.rejects(
        solve(client, {
          definition: checked.marshal({ localUniqueId: `filesync-vanishing-${Date.now()}` }).definition,
          session,
        }),
        /vanishing\.txt/,
      );
    } finally {
      session.close();
    }
  });

  test('hardlinks arrive as hardlinks, and only the first path is requested', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'a'));
    await mkdir(join(dir, 'b'));
    await writeFile(join(dir, 'a/data.bin'), randomBytes(100_000));
    await link(join(dir, 'a/data.bin'), join(dir, 'b/same.bin'));
    await link(join(dir, 'a/data.bin'), join(dir, 'c.bin'));
    await writeFile(join(dir, 'd.txt'), 'plain\n');
    const requested: string[] = [];
    const session = Session.start(client, [
      fileSyncService({ context: dir }, { onFileRequested: (p) => requested.push(p) }),
    ]);
    try {
      const context = local('context');
      const checked = image('python:3.11-slim')
        .run({
          shell:
            'cd /ctx && test a/data.bin -ef b/same.bin && test a/data.bin -ef c.bin && test "$(stat -c %h a/data.bin)" = 3 && cmp a/data.bin c.bin && test "$(stat -c %h d.txt)" = 1',
          mounts: [{ type: 'bind', dest: '/ctx', source: context, readonly: true }],
          ignoreCache: true,
        })
        .root();
      await solve(client, {
        definition: checked.marshal({ localUniqueId: `filesync-hardlinks-${Date.now()}` }).definition,
        session,
      });
    } finally {
      session.close();
    }
    assert.deepEqual(requested.sort(), ['a/data.bin', 'd.txt']);
  });
});
