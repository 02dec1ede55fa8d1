// Definitions built by our API, solved through our own client, exported to the client: an OCI tarball,
// a docker tarball, a plain tar into an open stream, and a local directory (also two at once).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { BuildkitClient } from '../../src/buildkit/client.js';
import { type ExportSpec, exportsFor } from '../../src/buildkit/filesend.js';
import { Session } from '../../src/buildkit/session.js';
import { solve } from '../../src/buildkit/solve.js';
import { diff, FileActions, image, scratch, type State } from '../../src/llb/index.js';
import { ensureTestbed, type Testbed } from '../support/testbed.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

let tb: Testbed;
let client: BuildkitClient;

before(async () => {
  tb = await ensureTestbed();
  client = await BuildkitClient.connect(tb.buildkitHost);
});

after(() => client.close());

/** A fresh temporary directory, removed after the tests. */
const tempDir = tempDirsRemovedAfterTests();

async function exportState(state: State, specs: ExportSpec[]): Promise<Record<string, string>> {
  const { exporters, service } = exportsFor(specs);
  const session = Session.start(client, [service]);
  try {
    return (await solve(client, { definition: state.marshal().definition, session, exporters }))
      .exporterResponse;
  } finally {
    session.close();
  }
}

/**
 * Runs a tool to completion (execFile: stdin is never written, so a tool that exits early cannot make
 * us fail with EPIPE as a written-and-closed stdin can).
 */
async function execOk(program: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  return promisify(execFile)(program, args, { maxBuffer: 64 * 1024 * 1024, ...options });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** A python image with one more layer holding `marker` (the marker changes per run: no cache hit). */
function markedImage(marker: string): State {
  return image('python:3.11-slim')
    .run({ shell: `echo ${marker} > /marker.txt` })
    .root();
}

const mtimeMs = Date.UTC(2020, 0, 2, 3, 4, 5);
const bigData = randomBytes(3 * 1024 * 1024 + 12345); // ~100 DATA packets of 32 KiB

/** A small filesystem with every kind of entry the local exporter sends (no rootfs). */
function filesStage(): State {
  return scratch().file(
    new FileActions()
      .mkdir('/d', { mode: 0o750, time: mtimeMs })
      .mkdir('/emptydir', { mode: 0o700, time: mtimeMs })
      .mkdir('/d/nested/deeper', { parents: true, mode: 0o755 })
      .mkfile('/d/run.sh', '#!/bin/sh\necho hi\n', { mode: 0o755, time: mtimeMs })
      .mkfile('/d/nested/deeper/note.txt', 'deep\n', { mode: 0o640 })
      .mkfile('/empty', '', { mode: 0o600 })
      .mkfile('/big.bin', bigData, { mode: 0o644 })
      .symlink('d/run.sh', '/link')
      .symlink('/etc/passwd', '/abs-link')
      .symlink('../../outside', '/d/escape'),
  );
}

/** Checks a directory holds exactly what filesStage() makes. */
async function checkFilesStage(dir: string): Promise<void> {
  const mode = async (p: string) => (await lstat(join(dir, p))).mode & 0o7777;
  assert.ok((await lstat(join(dir, 'd'))).isDirectory());
  assert.equal(await mode('d'), 0o750);
  assert.equal(Math.round((await lstat(join(dir, 'emptydir'))).mtimeMs), mtimeMs);
  assert.ok((await lstat(join(dir, 'd/nested/deeper'))).isDirectory());
  assert.equal(await readFile(join(dir, 'd/run.sh'), 'utf8'), '#!/bin/sh\necho hi\n');
  assert.equal(await mode('d/run.sh'), 0o755);
  assert.equal(Math.round((await lstat(join(dir, 'd/run.sh'))).mtimeMs), mtimeMs);
  assert.equal(await readFile(join(dir, 'd/nested/deeper/note.txt'), 'utf8'), 'deep\n');
  assert.equal(await mode('d/nested/deeper/note.txt'), 0o640);
  assert.equal((await lstat(join(dir, 'empty'))).size, 0);
  assert.equal(await mode('empty'), 0o600);
  assert.equal(await sha256File(join(dir, 'big.bin')), sha256(bigData));
  assert.equal(await readlink(join(dir, 'link')), 'd/run.sh');
  assert.equal(await readlink(join(dir, 'abs-link')), '/etc/passwd');
  assert.equal(await readlink(join(dir, 'd/escape')), '../../outside');
  const all = await readdir(dir, { recursive: true });
  assert.deepEqual(
    all.filter((name) => name.includes('.cogts-tmp-')),
    [],
    'no temporaries left',
  );
}

interface OciIndex {
  manifests: { digest: string; mediaType: string }[];
}
interface OciManifest {
  config: { digest: string };
  layers: { digest: string; mediaType: string }[];
}

test('oci exporter: an OCI tarball streamed to a file', { timeout: 600_000 }, async (t) => {
  const dir = await tempDir('cogts-oci-');
  const file = join(dir, 'image.tar');
  const marker = `oci-marker-${randomBytes(6).toString('hex')}`;
  const started = Date.now();
  const rss = process.memoryUsage.rss();
  let peak = rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  let response: Record<string, string>;
  try {
    response = await exportState(markedImage(marker), [
      { type: 'oci', output: file, attrs: { name: 'example.com/cogts/oci-export:test' } },
    ]);
  } finally {
    clearInterval(sampler);
  }
  const size = (await stat(file)).size;
  t.diagnostic(
    `oci tarball ${(size / 1e6).toFixed(1)} MB in ${Date.now() - started} ms; ` +
      `client RSS grew by at most ${((peak - rss) / 1e6).toFixed(1)} MB`,
  );
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n !== 'image.tar'),
    [],
    'only the final file is left',
  );

  const out = join(dir, 'x');
  await mkdir(out);
  await execOk('tar', ['-xf', file, '-C', out]);
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as OciIndex;
  const manifestDigest = index.manifests[0]?.digest ?? '';
  assert.equal(manifestDigest, response['containerimage.digest']);
  // every blob's sha256 is its name
  const blobs = await readdir(join(out, 'blobs/sha256'));
  assert.ok(blobs.length >= 4);
  for (const blob of blobs) assert.equal(await sha256File(join(out, 'blobs/sha256', blob)), blob);
  const manifest = JSON.parse(
    await readFile(join(out, 'blobs/sha256', manifestDigest.slice('sha256:'.length)), 'utf8'),
  ) as OciManifest;
  const last = manifest.layers.at(-1)?.digest.slice('sha256:'.length) ?? '';
  const found = await execOk('bash', [
    '-c',
    `zcat -f "$1" | grep -a -c "$2" || true`,
    '-',
    join(out, 'blobs/sha256', last),
    marker,
  ]);
  assert.notEqual(found.stdout.trim(), '0', 'the marker is in the last layer');
  // and skopeo reads it as an OCI archive
  const inspected = JSON.parse(
    (await execOk('skopeo', ['inspect', `oci-archive:${file}`], { env: tb.env })).stdout,
  ) as { Layers: string[] };
  assert.equal(inspected.Layers.length, manifest.layers.length);
});

test('docker exporter: a docker tarball with its name in manifest.json', { timeout: 600_000 }, async (t) => {
  const dir = await tempDir('cogts-docker-');
  const file = join(dir, 'image.tar');
  const started = Date.now();
  await exportState(markedImage('docker-marker'), [
    { type: 'docker', output: file, attrs: { name: 'cogts-test/docker-export:v1' } },
  ]);
  t.diagnostic(
    `docker tarball ${((await stat(file)).size / 1e6).toFixed(1)} MB in ${Date.now() - started} ms`,
  );
  const manifest = JSON.parse((await execOk('tar', ['-xOf', file, 'manifest.json'])).stdout) as {
    RepoTags: string[];
    Layers: string[];
    Config: string;
  }[];
  assert.equal(manifest.length, 1);
  assert.ok(
    manifest[0]?.RepoTags.some((tag) => tag.endsWith('cogts-test/docker-export:v1')),
    JSON.stringify(manifest[0]?.RepoTags),
  );
  assert.ok((manifest[0]?.Layers.length ?? 0) >= 2);
});

test('tar exporter: the filesystem as a tar into a stream we keep open', { timeout: 300_000 }, async () => {
  const dir = await tempDir('cogts-tar-');
  const file = join(dir, 'fs.tar');
  const stream = createWriteStream(file);
  await exportState(filesStage(), [{ type: 'tar', output: stream }]);
  assert.ok(stream.writable, 'the stream is left open for its owner');
  stream.end();
  await finished(stream);
  const listing = (await execOk('tar', ['-tvf', file])).stdout;
  for (const name of ['d/run.sh', 'd/nested/deeper/note.txt', 'big.bin', 'link -> d/run.sh'])
    assert.ok(listing.includes(name), `${name} in\n${listing}`);
});

test(
  'local exporter: files, modes, mtimes, symlinks and a multi-chunk file',
  { timeout: 300_000 },
  async (t) => {
    const dir = await tempDir('cogts-local-');
    const started = Date.now();
    await exportState(filesStage(), [{ type: 'local', dir: join(dir, 'out') }]);
    t.diagnostic(`local export in ${Date.now() - started} ms`);
    await checkFilesStage(join(dir, 'out'));
  },
);

test(
  'local exporter merges into an existing dir without following its symlinks',
  { timeout: 300_000 },
  async () => {
    const dir = await tempDir('cogts-local-merge-');
    const out = join(dir, 'out');
    const outside = join(dir, 'outside');
    await mkdir(outside);
    await mkdir(out);
    await writeFile(join(out, 'stale.txt'), 'kept');
    await symlink(outside, join(out, 'd')); // the export's /d must replace this, not write through it
    await writeFile(join(out, 'big.bin'), 'old contents');
    await exportState(filesStage(), [{ type: 'local', dir: out }]);
    await checkFilesStage(out);
    assert.equal(await readFile(join(out, 'stale.txt'), 'utf8'), 'kept');
    assert.deepEqual(await readdir(outside), []);
  },
);

test('local exporter: hardlinks and setuid bits from a run step', { timeout: 300_000 }, async () => {
  const base = image('python:3.11-slim');
  const upper = base
    .run({
      shell:
        'mkdir -p /hl && echo linked > /hl/a && ln /hl/a /hl/b && chmod 0604 /hl/a && cp /bin/true /hl/suid && chmod 4751 /hl/suid',
    })
    .root();
  const dir = await tempDir('cogts-local-hl-');
  await exportState(diff(base, upper), [{ type: 'local', dir }]);
  const a = await lstat(join(dir, 'hl/a'));
  const b = await lstat(join(dir, 'hl/b'));
  assert.equal(await readFile(join(dir, 'hl/b'), 'utf8'), 'linked\n');
  assert.equal(a.ino, b.ino);
  assert.equal(a.nlink, 2);
  assert.equal(a.mode & 0o7777, 0o604);
  assert.equal((await lstat(join(dir, 'hl/suid'))).mode & 0o7777, 0o4751);
});

test('two exporters in one solve land in their own targets', { timeout: 300_000 }, async () => {
  const dir = await tempDir('cogts-two-');
  const file = join(dir, 'fs-oci.tar');
  const response = await exportState(filesStage(), [
    { type: 'oci', output: file, attrs: { name: 'example.com/cogts/files:test' } },
    { type: 'local', dir: join(dir, 'out') },
  ]);
  await checkFilesStage(join(dir, 'out'));
  const index = JSON.parse((await execOk('tar', ['-xOf', file, 'index.json'])).stdout) as OciIndex;
  assert.equal(index.manifests[0]?.digest, response['containerimage.digest']);
});

test('a failing target fails the solve with its error', { timeout: 300_000 }, async () => {
  const dir = await tempDir('cogts-fail-');
  await writeFile(join(dir, 'file'), '');
  // a tar output that fails on its first chunk
  const broken = new Writable({
    write: (_chunk, _encoding, callback) => callback(new Error('disk full (test)')),
  });
  await assert.rejects(
    exportState(filesStage(), [{ type: 'tar', output: () => broken }]),
    /disk full \(test\)/,
  );
  // a local directory that cannot be created
  await assert.rejects(
    exportState(filesStage(), [{ type: 'local', dir: join(dir, 'file', 'out') }]),
    /ENOTDIR/,
  );
  // an OCI file in a missing directory
  await assert.rejects(
    exportState(filesStage(), [{ type: 'oci', output: join(dir, 'missing', 'x.tar') }]),
    /ENOENT/,
  );
  assert.deepEqual(await readdir(dir), ['file']);
});
