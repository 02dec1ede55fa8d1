// `cog build`'s source-only answer: after a build on buildkitd, an edit to the project's files alone is
// answered by cog-ts writing the new source layer on the last image's layers, with no buildkitd: to the
// local store (the image runs, and its layer holds what BuildKit's copy held) and to a registry (skopeo
// reads it back and verifies every blob). The same project makes the same image again; an edit below
// the source (cog.yaml), a layer lost from the store or --pull go back to buildkitd.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { ImageStore } from '../../src/image/store.js';
import { buildRun, helloCopy } from '../support/build-runs.js';
import { exec, execOk } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tempDir = tempDirsRemovedAfterTests();
const tag = Date.now().toString(36);
let tb: Testbed;
let scratchDir: string;

before(async () => {
  tb = await ensureTestbed();
  scratchDir = await tempDir('cogts-source-only-');
});

function helloProject(name: string): Promise<string> {
  return helloCopy(join(scratchDir, name));
}

function envFor(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...tb.env,
    COG_IMAGE_STORE: join(scratchDir, 'store'),
    XDG_CACHE_HOME: join(scratchDir, 'cache'),
    ...extra,
  };
}

function build(project: string, args: string[]) {
  return buildRun(project, args, envFor());
}

async function editPredictor(project: string, from: string, to: string): Promise<void> {
  const file = join(project, 'predict.py');
  const text = await readFile(file, 'utf8');
  assert.ok(text.includes(from), `predict.py has ${from}`);
  await writeFile(file, text.replace(from, to));
}

interface Manifest {
  config: { digest: string };
  layers: { digest: string; mediaType: string }[];
}
interface Config {
  config: { Labels: Record<string, string> };
  rootfs: { diff_ids: string[] };
}

async function imageIn(store: ImageStore, name: string) {
  const descriptor = await store.resolve(name);
  assert.ok(descriptor, `${name} is in the store`);
  const manifest = JSON.parse((await store.readBlob(descriptor.digest)).toString('utf8')) as Manifest;
  const config = JSON.parse((await store.readBlob(manifest.config.digest)).toString('utf8')) as Config;
  return { digest: descriptor.digest, manifest, config };
}

/** name → type, mode, owner and content of a gzipped layer's entries. */
async function layerEntries(gzipped: Buffer): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  const parser = new Parser();
  parser.on('entry', (entry: ReadEntry) => {
    const chunks: Buffer[] = [];
    entry.on('data', (chunk: Buffer) => chunks.push(chunk));
    entry.on('end', () => {
      const content = entry.type === 'File' ? Buffer.concat(chunks).toString('utf8') : entry.linkpath;
      const mode = (entry.mode ?? 0).toString(8);
      entries.set(
        entry.path.replace(/\/$/, ''),
        `${entry.type} ${mode} ${entry.uid}:${entry.gid} ${content}`,
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    parser.end(gunzipSync(gzipped));
  });
  return entries;
}

test(
  'an edit to predict.py is answered without buildkitd, into the store, and the image runs it',
  { timeout: 900_000 },
  async () => {
    const project = await helloProject('project-store');
    // a pattern holding ", " leaves out the one file it names (BuildKit's transfer split it in two:
    // x and y.txt were left out instead), and a socket is no entry (the transfer hung on it)
    await writeFile(join(project, '.dockerignore'), 'x, y.txt\n');
    for (const file of ['x, y.txt', 'x', 'y.txt']) await writeFile(join(project, file), file);
    await execOk('python3', [
      '-c',
      'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
      join(project, 'server.sock'),
    ]);
    const name = `source-only:${tag}`;
    const args = ['-t', name];
    const store = new ImageStore(join(scratchDir, 'store'));
    const first = await build(project, args);
    assert.ok(first.buildkit, 'the first build is solved');
    const before = await imageIn(store, name);
    // BuildKit's source layer, read now: the store drops it once the name moves to the next image
    const buildkitLayer = await store.readBlob(before.manifest.layers.at(-1)!.digest);

    await editPredictor(project, '"hello "', '"howdy "');
    await editPredictor(project, 'Who to greet', 'Whom to greet');
    const edited = await build(project, args);
    assert.ok(edited.sourceOnly, edited.stderr);
    assert.equal(edited.buildkit, false, `no buildkitd:\n${edited.stderr}`);
    assert.notEqual(edited.digest, first.digest);

    const after = await imageIn(store, name);
    assert.equal(after.digest, edited.digest);
    assert.deepEqual(after.manifest.layers.slice(0, -1), before.manifest.layers.slice(0, -1));
    assert.deepEqual(after.config.rootfs.diff_ids.slice(0, -1), before.config.rootfs.diff_ids.slice(0, -1));
    const top = await store.readBlob(after.manifest.layers.at(-1)!.digest);
    const diffId = `sha256:${createHash('sha256').update(gunzipSync(top)).digest('hex')}`;
    assert.equal(after.config.rootfs.diff_ids.at(-1), diffId);
    const labels = after.config.config.Labels;
    assert.match(labels['run.cog.openapi_schema'] ?? '', /Whom to greet/, 'the schema of the new predictor');
    assert.equal(labels['run.cog.pip_freeze'], before.config.config.Labels['run.cog.pip_freeze']);
    assert.equal(labels['run.cog.config'], before.config.config.Labels['run.cog.config']);

    // entry for entry what BuildKit's copy made, but the edited file
    const ours = await layerEntries(top);
    const buildkits = await layerEntries(buildkitLayer);
    for (const kept of ['src/x', 'src/y.txt']) assert.ok(buildkits.has(kept), `${kept} in BuildKit's layer`);
    for (const left of ['src/x, y.txt', 'src/server.sock'])
      assert.ok(!buildkits.has(left), `${left} not in BuildKit's layer`);
    assert.deepEqual([...ours.keys()].sort(), [...buildkits.keys()].sort());
    for (const [path, entry] of buildkits) {
      if (path === 'src/predict.py' || path === 'src/.cog/openapi_schema.json') continue;
      assert.equal(ours.get(path)?.replace(/ .*$/, ''), entry.replace(/ .*$/, ''), path);
      if (entry.startsWith('File')) assert.equal(ours.get(path), entry, path);
    }
    assert.match(ours.get('src/predict.py') ?? '', /^File 644 0:0 .*"howdy "/s);
    assert.match(ours.get('src/.cog/openapi_schema.json') ?? '', /Whom to greet/);

    // the image runs the edited predictor
    const ran = await exec(cog, ['run', name, '-i', 'name=source', '--progress', 'quiet'], {
      env: envFor(),
      cwd: scratchDir,
    });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout.trim(), 'howdy source');
    // every blob is where the manifest says, with its digest
    await execOk('skopeo', [
      'copy',
      `oci:${join(scratchDir, 'store')}:${name}`,
      `dir:${join(scratchDir, 'copied')}`,
    ]);

    // the same project again (once the edit is out of the racy window): the same image
    await sleep(2100);
    const again = await build(project, args);
    assert.ok(again.sourceOnly, again.stderr);
    assert.equal(again.digest, edited.digest, 'the same project makes the same image');

    // a layer below the source gone from the store: buildkitd makes the image again
    const lostLayer = before.manifest.layers[1]!.digest.replace('sha256:', '');
    await rm(join(scratchDir, 'store', 'blobs', 'sha256', lostLayer));
    // (content this daemon has never built: its cache would answer the copy otherwise)
    await editPredictor(project, '"howdy "', `"hi " # ${tag}`);
    const lost = await build(project, args);
    assert.equal(lost.sourceOnly, false, lost.stderr);
    assert.ok(lost.buildkit);
    assert.deepEqual(lost.steps.ran, ['copy the project to /src'], 'the cache still has everything else');

    // an edit below the source: buildkitd, the steps after it run
    await writeFile(
      join(project, 'cog.yaml'),
      `${await readFile(join(project, 'cog.yaml'), 'utf8')}environment:\n  - GREETING=1\n`,
    );
    const configEdit = await build(project, args);
    assert.equal(configEdit.sourceOnly, false, configEdit.stderr);
    assert.ok(configEdit.buildkit);

    // --pull always solves
    await editPredictor(project, `"hi " # ${tag}`, '"hey "');
    const pulled = await build(project, [...args, '--pull']);
    assert.equal(pulled.sourceOnly, false);
    assert.ok(pulled.buildkit);
  },
);

test(
  'Ctrl-C while the source layer is written stops it, says so (130) and leaves the store as it was; the next build answers',
  { timeout: 900_000 },
  async () => {
    const project = await helloProject('project-interrupt');
    const name = `source-only-interrupt:${tag}`;
    const args = ['-t', name];
    const store = new ImageStore(join(scratchDir, 'store'));
    assert.ok((await build(project, args)).buildkit, 'the first build is solved');
    const before = await imageIn(store, name);
    // a project file big enough that its layer takes seconds to write (random bytes: gzip gains nothing)
    const big = createWriteStream(join(project, 'weights.bin'));
    for (let i = 0; i < 200; i++) if (!big.write(randomBytes(1 << 20))) await once(big, 'drain');
    await new Promise((resolve) => big.end(resolve));

    const ingest = join(scratchDir, 'store', 'ingest');
    const child = spawn(cog, ['build', ...args, '--progress', 'plain', '--use-cog-base-image=false'], {
      cwd: project,
      env: envFor(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // the layer is being written once its staging file is there
    const staging = async () => (await readdir(ingest).catch(() => [])).filter((f) => f.endsWith('.tmp'));
    for (let waited = 0; (await staging()).length === 0; waited += 20) {
      assert.ok(waited < 120_000 && child.exitCode === null, `no layer was written:\n${stderr}`);
      await sleep(20);
    }
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /^cog: SIGINT: cancelling the build/m);
    assert.match(stderr, /^cog: error: interrupted \(SIGINT\): the build was cancelled$/m);
    assert.doesNotMatch(stderr, /^cog: build /m, 'no build on buildkitd followed');
    assert.deepEqual(await staging(), [], 'the half-written layer is removed');
    assert.equal((await imageIn(store, name)).digest, before.digest, 'the name still has its image');

    const started = performance.now();
    const again = await build(project, args);
    const took = performance.now() - started;
    assert.ok(again.sourceOnly, again.stderr);
    assert.notEqual(again.digest, before.digest);
    // writing the 200 MiB layer is not silent once it takes a while (progress/step-lines.ts: a first line
    // after 2 s of it; here it takes ~10 s); a machine that writes it in under 2 s rightly says nothing
    const progressLines = [
      /^cog: writing the source layer: \d+\.\d MiB \/ 200\.\d MiB$/m,
      /^cog: writing the source layer: done, 200\.\d MiB in \d+\.\ds$/m,
    ];
    if (took >= 5_000) for (const line of progressLines) assert.match(again.stderr, line);
    else if (took < 2_000) for (const line of progressLines) assert.doesNotMatch(again.stderr, line);
  },
);

test(
  'an edit to predict.py is pushed without buildkitd, and reads back with the digests it was pushed with',
  { timeout: 900_000 },
  async () => {
    const project = await helloProject('project-push');
    const ref = `${tb.registry}/cogts-test/source-only:${tag}`;
    const args = ['-t', ref, '--push'];
    const first = await build(project, args);
    assert.ok(first.buildkit);

    await editPredictor(project, '"hello "', '"howdy "');
    const edited = await build(project, args);
    assert.ok(edited.sourceOnly, edited.stderr);
    assert.equal(edited.buildkit, false, edited.stderr);
    assert.match(edited.stderr, /and pushed$/m);

    const inspected = JSON.parse(
      (await execOk('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).stdout,
    ) as { Digest: string; Labels: Record<string, string> };
    assert.equal(inspected.Digest, edited.digest);
    const raw = JSON.parse(
      (await execOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout,
    ) as Manifest;
    const firstRaw = JSON.parse(
      (
        await execOk('skopeo', [
          'inspect',
          '--raw',
          '--tls-verify=false',
          `docker://${ref.replace(/:[^:]+$/, '')}@${first.digest}`,
        ])
      ).stdout,
    ) as Manifest;
    assert.deepEqual(
      raw.layers.slice(0, -1),
      firstRaw.layers.slice(0, -1),
      'the layers below are the pushed ones',
    );
    // skopeo verifies each blob's digest as it copies
    await execOk('skopeo', [
      'copy',
      '--src-tls-verify=false',
      `docker://${ref}`,
      `oci:${join(scratchDir, 'pulled')}:x`,
    ]);
    const ran = await exec(cog, ['run', ref, '-i', 'name=registry', '--progress', 'quiet'], {
      env: envFor({ COG_IMAGE_STORE: join(scratchDir, 'empty-store') }),
      cwd: scratchDir,
    });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout.trim(), 'howdy registry');
  },
);
