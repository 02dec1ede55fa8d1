// The local image store's garbage collection (what named images reach, which leases stop a
// collection, what a collection removes from a real store directory) and its listing for `cog image ls`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  UnreadableManifestError,
  digestsNamedIn,
  foreignLeaseMs,
  leaseIsLive,
  reachableDigests,
} from '../../src/image/store-gc.js';
import {
  type Descriptor,
  ImageStore,
  imageStoreDir,
  ociIndexProblem,
  refNameAnnotation,
} from '../../src/image/store.js';
import { listStore } from '../../src/image/store-listing.js';
import { findStoredImage } from '../../src/image/find.js';
import { formatStoreListing } from '../../src/cli/images.js';
import { inspectLocal, parsePlatform } from '../../src/cli/inspect.js';
import { CogError } from '../../src/errors.js';
import { DamagedBlobError } from '../../src/image/damaged-blob.js';
import { collectStoreGarbage } from '../../src/cli/store-garbage.js';
import { exec } from '../support/exec.js';
import { repoRoot } from '../support/testbed.js';
import { processStartTicks } from '../../src/process-start.js';

const manifestType = 'application/vnd.oci.image.manifest.v1+json';
const indexType = 'application/vnd.oci.image.index.v1+json';
const layerType = 'application/vnd.oci.image.layer.v1.tar+gzip';
const configType = 'application/vnd.oci.image.config.v1+json';
const cog = join(repoRoot, 'bin', 'cog');
const sha256 = (data: string | Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cogts-store-gc-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Writes a blob into `root`'s layout and returns its descriptor. */
async function putBlob(root: string, mediaType: string, data: string): Promise<Descriptor> {
  const digest = sha256(data);
  await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(root, 'blobs', 'sha256', digest.slice(7)), data);
  return { mediaType, digest, size: Buffer.byteLength(data) };
}

/** An image of `layers` (texts) with its own config; returns the manifest descriptor. */
async function putImage(root: string, name: string, layers: string[], created?: string): Promise<Descriptor> {
  const config = await putBlob(
    root,
    configType,
    JSON.stringify({ name, architecture: 'amd64', os: 'linux', ...(created ? { created } : {}) }),
  );
  const layerDescs = await Promise.all(layers.map((l) => putBlob(root, layerType, l)));
  return putBlob(
    root,
    manifestType,
    JSON.stringify({ schemaVersion: 2, mediaType: manifestType, config, layers: layerDescs }),
  );
}

async function blobsIn(root: string): Promise<Set<string>> {
  return new Set((await readdir(join(root, 'blobs', 'sha256'))).map((hex) => `sha256:${hex}`));
}

async function newStore(name: string): Promise<ImageStore> {
  const root = join(scratch, name);
  await mkdir(root, { recursive: true });
  return new ImageStore(root);
}

/**
 * Names `name` an image whose manifest is cut short just after `shared`: it still names its config and
 * that layer, not the layer after the cut (which is in the store).
 */
async function addCutImage(store: ImageStore, name: string, shared: Descriptor) {
  const configA = await putBlob(store.root, configType, JSON.stringify({ name, os: 'linux' }));
  const afterCut = await putBlob(store.root, layerType, `${name} layer after the cut`);
  const whole = JSON.stringify({ schemaVersion: 2, config: configA, layers: [shared, afterCut] });
  const cut = await putBlob(store.root, manifestType, whole.slice(0, whole.indexOf(shared.digest) + 71));
  const index = JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8')) as {
    manifests: Descriptor[];
  };
  index.manifests.push({ ...cut, annotations: { [refNameAnnotation]: name } });
  await writeFile(join(store.root, 'index.json'), JSON.stringify(index));
  return { configA, afterCut, cut };
}

describe('reachableDigests', () => {
  const blobs = new Map<string, unknown>();
  const desc = (mediaType: string, name: string, doc?: unknown): Descriptor => {
    const digest = sha256(name);
    if (doc !== undefined) blobs.set(digest, doc);
    return { mediaType, digest, size: 1 };
  };
  const read = async (digest: string) => blobs.get(digest);

  test('follows an index to its manifests and their configs, layers and subjects', async () => {
    const config = desc(configType, 'config');
    const layer = desc(layerType, 'layer');
    const image = desc(manifestType, 'image', { config, layers: [layer] });
    const attestation = desc(manifestType, 'attestation', {
      config: desc(configType, 'att-config'),
      layers: [desc('application/vnd.in-toto+json', 'statement')],
      subject: image,
    });
    const index = desc(indexType, 'index', { manifests: [image, attestation] });
    const reached = await reachableDigests([index], read);
    assert.deepEqual(
      [...reached].sort(),
      ['index', 'image', 'config', 'layer', 'attestation', 'att-config', 'statement']
        .map((n) => sha256(n))
        .sort(),
    );
  });

  test('a missing manifest reaches only itself; layers are never read', async () => {
    const asked: string[] = [];
    const missing = desc(manifestType, 'missing');
    const layer = desc(layerType, 'a-layer-with-json-looking-content', { config: desc(configType, 'never') });
    const reached = await reachableDigests([missing, layer], async (d) => {
      asked.push(d);
      return blobs.get(d);
    });
    assert.deepEqual([...reached].sort(), [missing.digest, layer.digest].sort());
    assert.deepEqual(asked, [missing.digest], 'only the manifest is read');
  });

  test('a manifest that is not JSON stops the walk with an error', async () => {
    const bad = desc(manifestType, 'bad');
    await assert.rejects(
      reachableDigests([bad], async () => {
        throw new UnreadableManifestError(bad.digest, 'Unexpected token');
      }),
      UnreadableManifestError,
    );
  });

  test('with onUnreadable, a manifest that is not JSON is reported and the walk goes on', async () => {
    const bad = desc(manifestType, 'bad-but-reported');
    const layer = desc(layerType, 'beside-bad');
    const good = desc(manifestType, 'good-beside-bad', { layers: [layer] });
    const reported: string[] = [];
    const reached = await reachableDigests(
      [bad, good],
      async (d) => {
        if (d === bad.digest) throw new UnreadableManifestError(bad.digest, 'Unexpected token');
        return blobs.get(d);
      },
      (err) => reported.push(err.digest),
    );
    assert.deepEqual(reported, [bad.digest]);
    assert.deepEqual([...reached].sort(), [bad.digest, good.digest, layer.digest].sort());
  });
});

test('digestsNamedIn finds each sha256 digest a damaged text still holds, once', () => {
  const a = sha256('a');
  const b = sha256('b');
  assert.deepEqual(
    digestsNamedIn(`{"config":{"digest":"${a}"},"layers":[{"digest":"${b}"},{"digest":"${a}`),
    [a, b],
  );
  assert.deepEqual(
    digestsNamedIn(`{"layers":[{"digest":"${b.slice(0, 40)}`),
    [],
    'a digest cut short is none',
  );
});

describe('leaseIsLive', () => {
  const here = { host: 'laptop', isAlive: (pid: number) => pid === 42 };
  test('a lease of this host lives while its process does', () => {
    assert.equal(leaseIsLive({ pid: 42, host: 'laptop' }, 10 * foreignLeaseMs, here), true);
    assert.equal(leaseIsLive({ pid: 43, host: 'laptop' }, 0, here), false);
  });
  test("another host's lease lives for a day", () => {
    assert.equal(leaseIsLive({ pid: 43, host: 'ci-runner' }, foreignLeaseMs - 1000, here), true);
    assert.equal(leaseIsLive({ pid: 42, host: 'ci-runner' }, foreignLeaseMs + 1000, here), false);
  });
});

describe('ImageStore garbage collection', () => {
  test('after a name moves, the old image’s own blobs go and shared and named ones stay', async () => {
    const store = await newStore('moved');
    const first = await putImage(store.root, 'first', ['base layer', 'source v1']);
    const other = await putImage(store.root, 'other', ['base layer', 'other source']);
    assert.equal(await store.tag('hello', first), undefined);
    await store.tag('other', other);
    const second = await putImage(store.root, 'second', ['base layer', 'source v2']);
    const previous = await store.tag('hello', second);
    assert.equal(previous?.digest, first.digest);
    // a write of a build that stopped before naming its image
    await mkdir(join(store.root, 'ingest'), { recursive: true });
    await writeFile(join(store.root, 'ingest', 'abc.tmp'), 'partial');
    const orphan = await putBlob(store.root, layerType, 'never named');

    const before = await blobsIn(store.root);
    const collected = await store.collectGarbage();
    const after = await blobsIn(store.root);
    const removed = [...before].filter((d) => !after.has(d)).sort();
    const firstConfig = sha256(JSON.stringify({ name: 'first', architecture: 'amd64', os: 'linux' }));
    assert.deepEqual(removed, [first.digest, firstConfig, sha256('source v1'), orphan.digest].sort());
    assert.equal(collected.blobs, 4);
    assert.equal(collected.skipped, false);
    assert.ok(
      after.has(sha256('base layer')) && after.has(sha256('source v2')) && after.has(sha256('other source')),
    );
    assert.equal(existsSync(join(store.root, 'ingest')), false, 'staging files of stopped writes go too');
    // what is still named reads back whole
    assert.ok(after.has(second.digest) && after.has(other.digest));
    assert.equal((await store.collectGarbage()).blobs, 0, 'a second collection finds nothing');
  });

  test('tag refuses a manifest whose layer the store lacks, and leaves the name alone', async () => {
    const store = await newStore('broken');
    const good = await putImage(store.root, 'good', ['layer a']);
    await store.tag('m', good);
    const broken = await putImage(store.root, 'broken', ['layer b']);
    await rm(join(store.root, 'blobs', 'sha256', sha256('layer b').slice(7)));
    await assert.rejects(store.tag('m', broken), (err: Error) => {
      assert.match(err.message, new RegExp(`lacks ${sha256('layer b')}`));
      return true;
    });
    assert.equal((await store.resolve('m'))?.digest, good.digest);
  });

  test('tag of an image whose manifest the store holds damaged names the blob and the images using it', async () => {
    const store = await newStore('tag-damaged');
    const image = await putImage(store.root, 'img', ['layer']);
    await store.tag('first', image);
    await store.tag('second', image);
    const other = await putImage(store.root, 'other', ['other layer']);
    await store.tag('other', other);
    // the manifest cut short, as a crash or a full disk leaves it; a new build writes the same digest
    // and finds the damaged copy in place
    const file = join(store.root, 'blobs', 'sha256', image.digest.slice(7));
    await writeFile(file, (await readFile(file, 'utf8')).slice(0, 40));
    for (const name of ['first', 'third'])
      await assert.rejects(store.tag(name, image), (err: unknown) => {
        assert.ok(err instanceof DamagedBlobError, String(err));
        assert.equal(err.digest, image.digest);
        assert.match(
          err.message,
          new RegExp(
            `^blob ${image.digest} of the image built as ${name} in the local image store is not JSON \\(.+\\): it is damaged$`,
          ),
        );
        assert.equal(
          err.hint,
          'remove the images that use it (`cog image rm first second`, which drops blobs no image uses), then build again; a build alone keeps the damaged copy',
        );
        return true;
      });
    assert.equal(await store.resolve('third'), undefined, 'the name is not filed');
  });

  test("another live process's lease stops a collection; its end lets the next one run", async () => {
    const store = await newStore('leased');
    const img = await putImage(store.root, 'img', ['kept']);
    await store.tag('img', img);
    const orphan = await putBlob(store.root, layerType, 'orphan');
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const leases = join(store.root, 'leases');
    await mkdir(leases, { recursive: true });
    const leaseFile = join(leases, `${child.pid}-other.json`);
    await writeFile(leaseFile, JSON.stringify({ pid: child.pid, host: hostname() }));
    try {
      const skipped = await store.collectGarbage();
      assert.deepEqual(skipped, { blobs: 0, bytes: 0, skipped: true, heldBy: [`pid ${child.pid}`] });
      assert.ok((await blobsIn(store.root)).has(orphan.digest));
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
    }
    const collected = await store.collectGarbage();
    assert.equal(collected.blobs, 1);
    assert.equal(collected.bytes, 'orphan'.length);
    assert.equal(existsSync(leaseFile), false, "a dead process's lease is removed");
  });

  test("this process's own lease does not stop it; an old lease of another host does not either", async () => {
    const store = await newStore('own');
    const img = await putImage(store.root, 'img', ['kept']);
    await store.tag('img', img);
    await putBlob(store.root, layerType, 'orphan 1');
    const own = await store.lease();
    const foreign = join(store.root, 'leases', 'elsewhere.json');
    await writeFile(foreign, JSON.stringify({ pid: 1, host: `not-${hostname()}` }));
    assert.equal((await store.collectGarbage()).skipped, true, 'a fresh lease of another host counts');
    const old = new Date(Date.now() - foreignLeaseMs - 60_000);
    await utimes(foreign, old, old);
    const collected = await store.collectGarbage();
    assert.equal(collected.skipped, false);
    assert.equal(collected.blobs, 1);
    await own.release();
    assert.deepEqual(await readdir(join(store.root, 'leases')), []);
  });

  test('a lease that is not JSON (a write that failed) or whose pid another process has now does not stop it', async () => {
    const store = await newStore('stale-leases');
    const img = await putImage(store.root, 'img', ['kept']);
    await store.tag('img', img);
    await putBlob(store.root, layerType, 'orphan');
    const leases = join(store.root, 'leases');
    await mkdir(leases, { recursive: true });
    // an empty lease, as a full disk leaves one
    await writeFile(join(leases, '99999-empty.json'), '');
    // a live process that started at another time than the lease's writer: its pid was reused
    assert.ok((await processStartTicks('self')) !== undefined, '/proc tells when a process started');
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      await writeFile(
        join(leases, 'reused.json'),
        JSON.stringify({ pid: child.pid, host: hostname(), start: '1' }),
      );
      const collected = await store.collectGarbage();
      assert.equal(collected.skipped, false, JSON.stringify(collected));
      assert.equal(collected.blobs, 1);
      assert.deepEqual(await readdir(leases), [], 'the stale leases are removed');
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
    }
  });

  test('an index that cannot be written is a CogError naming it (not an internal error), the old one kept', async () => {
    const store = await newStore('unwritable-index');
    const img = await putImage(store.root, 'img', ['kept']);
    await store.tag('img', img);
    // the index's temporary file cannot be made (a directory has its name), as on a full disk
    await mkdir(join(store.root, `index.json.${process.pid}.tmp`));
    await assert.rejects(
      store.tag('other', img),
      (err: unknown) =>
        err instanceof CogError &&
        err.message.startsWith(`cannot write ${join(store.root, 'index.json')} in the local image store: `) &&
        /COG_IMAGE_STORE/.test(err.hint ?? ''),
    );
    assert.deepEqual(
      (await store.index()).manifests.map((m) => m.annotations?.[refNameAnnotation]),
      ['img'],
    );
  });

  test("a reader's lease makes no store where there is none", async () => {
    const root = join(scratch, 'absent');
    const lease = await new ImageStore(root).lease({ ifExists: true });
    await lease.release();
    assert.equal(existsSync(root), false);
  });
});

describe('the image store lock', () => {
  test('the lock of a cog that died holding it (kill -9) is cleared; a live holder is waited for', async () => {
    const store = await newStore('locked');
    const img = await putImage(store.root, 'img', ['kept']);
    const lock = join(store.root, 'index.json.lock');
    // a process that is gone: its pid on this host answers ESRCH
    const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((resolve) => dead.once('exit', resolve));
    await writeFile(lock, `${dead.pid}@${hostname()}`);
    const started = Date.now();
    await store.tag('img', img);
    assert.ok(Date.now() - started < 2_000, `waited ${Date.now() - started} ms for a dead cog's lock`);
    assert.equal(existsSync(lock), false, 'no lock left');
    assert.deepEqual(
      (await store.index()).manifests.map((m) => m.annotations?.[refNameAnnotation]),
      ['img'],
    );

    // a live holder (this process, as another cog would be): waited for until it lets go
    await writeFile(lock, `${process.pid}@${hostname()}`);
    let tagged = false;
    const tagging = store.tag('again', img).then(() => (tagged = true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(tagged, false, 'the store waits for the live holder');
    await rm(lock);
    await tagging;
    assert.equal(existsSync(lock), false);
  });
});

describe('listStore and cog image ls', () => {
  test('sizes count shared layers in each image and once on disk; created comes from the config', async () => {
    const store = await newStore('listing');
    const a = await putImage(
      store.root,
      'a',
      ['shared base '.repeat(100), 'a source'],
      '2026-11-20T10:11:12Z',
    );
    const b = await putImage(
      store.root,
      'b',
      ['shared base '.repeat(100), 'b source'],
      '2026-11-21T08:00:00Z',
    );
    const index = await putBlob(store.root, indexType, JSON.stringify({ schemaVersion: 2, manifests: [b] }));
    await store.tag('zeta:1', a);
    await store.tag('alpha:2', index);
    const sizeOf = async (d: Descriptor) => {
      const json = JSON.parse((await store.readBlob(d.digest)).toString()) as {
        config: Descriptor;
        layers: Descriptor[];
      };
      return d.size + json.config.size + json.layers.reduce((sum, l) => sum + l.size, 0);
    };
    const listing = await listStore(store);
    assert.deepEqual(
      listing.images.map((i) => [i.name, i.digest, i.size, i.created]),
      [
        ['alpha:2', index.digest, index.size + (await sizeOf(b)), '2026-11-21T08:00:00Z'],
        ['zeta:1', a.digest, await sizeOf(a), '2026-11-20T10:11:12Z'],
      ],
    );
    const onDisk = [...(await blobsIn(store.root))].length;
    assert.equal(onDisk, 8, 'a: manifest, config, 2 layers; b: manifest, config, 1 own layer; the index');
    const shared = 'shared base '.repeat(100).length;
    assert.equal(listing.diskBytes, listing.images[0]!.size + listing.images[1]!.size - shared);

    const text = formatStoreListing(listing);
    const [header, first, second] = text.split('\n');
    assert.match(header!, /^NAME\s+DIGEST\s+SIZE\s+CREATED$/);
    assert.match(
      first!,
      new RegExp(`^alpha:2\\s+${index.digest.slice(0, 19)}\\s+[0-9.]+ KiB\\s+2026-11-21 08:00 UTC$`),
    );
    assert.match(second!, /^zeta:1 /);
    assert.equal(first!.indexOf('sha256:'), second!.indexOf('sha256:'), 'columns line up');
    assert.match(text, /2 images; the store's blobs take [0-9.]+ KiB/);
  });

  test('a name whose manifest is missing or not JSON is listed as damaged, with how to remove it', async () => {
    const store = await newStore('listing-damaged');
    const whole = await putImage(store.root, 'whole', ['w'], '2026-11-20T10:11:12Z');
    const gone = await putImage(store.root, 'gone', ['g']);
    const cut = await putBlob(store.root, manifestType, '{"schemaVersion":2,"con');
    const noConfig = await putImage(store.root, 'noconfig', ['n']);
    const noConfigJson = JSON.parse((await store.readBlob(noConfig.digest)).toString('utf8')) as {
      config: Descriptor;
    };
    await store.tag('whole:1', whole);
    await store.tag('gone:1', gone);
    await store.tag('noconfig:1', noConfig);
    await rm(join(store.root, 'blobs', 'sha256', gone.digest.slice(7)));
    await rm(join(store.root, 'blobs', 'sha256', noConfigJson.config.digest.slice(7)));
    const index = JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8')) as {
      manifests: Descriptor[];
    };
    index.manifests.push({ ...cut, annotations: { [refNameAnnotation]: 'cut:1' } });
    await writeFile(join(store.root, 'index.json'), JSON.stringify(index));
    const listing = await listStore(store);
    assert.deepEqual(
      listing.images.map((i) => [i.name, i.damaged]),
      [
        ['cut:1', `its manifest ${cut.digest} is not JSON`],
        ['gone:1', `its manifest ${gone.digest} is missing`],
        // its config gone too: cog inspect could not read it (it was listed as whole)
        ['noconfig:1', `its config ${noConfigJson.config.digest} is missing`],
        ['whole:1', undefined],
      ],
    );
    const lines = formatStoreListing(listing).split('\n');
    assert.match(lines[1]!, /^cut:1\s+sha256:\S+\s+\S+ B\s+damaged$/);
    assert.match(lines[2]!, /^gone:1\s+sha256:\S+\s+0 B\s+damaged$/);
    assert.match(lines[3]!, /^noconfig:1\s+sha256:\S+\s+\S+ B\s+damaged$/);
    assert.match(lines[4]!, /^whole:1\s+.* 2026-11-20 10:11 UTC$/);
    assert.ok(
      lines.includes(
        `gone:1 is damaged (its manifest ${gone.digest} is missing): remove it with \`cog image rm gone:1\``,
      ),
      lines.join('\n'),
    );
    assert.ok(lines.some((l) => l.startsWith('cut:1 is damaged (its manifest ')));
  });

  test('an empty or absent store says so', async () => {
    const listing = await listStore(new ImageStore(join(scratch, 'nothing-here')));
    assert.deepEqual(listing.images, []);
    assert.equal(listing.diskBytes, 0);
    assert.match(formatStoreListing(listing), /No images in the local image store/);
  });

  test('untag takes names out and leaves the others', async () => {
    const store = await newStore('untag');
    const a = await putImage(store.root, 'ua', ['x']);
    const b = await putImage(store.root, 'ub', ['y']);
    await store.tag('a', a);
    await store.tag('b', b);
    await store.untag(['a']);
    assert.equal(await store.resolve('a'), undefined);
    assert.equal((await store.resolve('b'))?.digest, b.digest);
    assert.equal((await store.collectGarbage()).blobs, 3, "a's manifest, config and layer");
  });
});

test('a named manifest that is not JSON stops a collection, which removes nothing; ls still lists it', async () => {
  const store = await newStore('garbled');
  const good = await putImage(store.root, 'g', ['kept layer']);
  await store.tag('good', good);
  const garbled = await putBlob(store.root, manifestType, 'not json {');
  // filed by hand: tag() itself refuses what it cannot read
  const index = JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8')) as {
    manifests: Descriptor[];
  };
  index.manifests.push({ ...garbled, annotations: { 'org.opencontainers.image.ref.name': 'garbled' } });
  await writeFile(join(store.root, 'index.json'), JSON.stringify(index));
  const orphan = await putBlob(store.root, layerType, 'orphan');
  await assert.rejects(store.collectGarbage(), (err: Error) => {
    assert.ok(err instanceof UnreadableManifestError);
    assert.match(err.message, /unreadable .*: it is damaged, and no unused blob was removed$/);
    // the name that holds it, which cog image ls does not tell
    assert.equal(err.hint, 'remove the images that use it (`cog image rm garbled`), then build again');
    return true;
  });
  assert.ok((await blobsIn(store.root)).has(orphan.digest));
  assert.deepEqual(
    (await listStore(store)).images.map((i) => i.name),
    ['garbled', 'good'],
  );
});

test('cog image rm of a sound image beside a damaged one removes it and the blobs only it used, and warns', async () => {
  const store = await newStore('rm-beside-damaged');
  const shared = await putBlob(store.root, layerType, 'shared layer');
  const onlyB = await putBlob(store.root, layerType, 'only b');
  const configB = await putBlob(store.root, configType, JSON.stringify({ name: 'b', os: 'linux' }));
  const b = await putBlob(
    store.root,
    manifestType,
    JSON.stringify({ schemaVersion: 2, mediaType: manifestType, config: configB, layers: [shared, onlyB] }),
  );
  await store.tag('b', b);
  const c = await putImage(store.root, 'c', ['c layer']);
  await store.tag('c', c);
  // a's manifest is cut short: it still names its config and the shared layer, not the layer after
  const { configA, afterCut, cut } = await addCutImage(store, 'a', shared);
  const orphan = await putBlob(store.root, layerType, 'no one names this');
  const before = await blobsIn(store.root);
  const env = { ...process.env, COG_IMAGE_STORE: store.root };

  const removed = await exec(cog, ['image', 'rm', 'b'], { env });
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(removed.stdout, 'Removed b\n');
  assert.match(
    removed.stderr,
    new RegExp(
      `^cog: warning: image a in the local image store is damaged \\(manifest ${cut.digest} is unreadable: .+\\); the blobs it may use were kept: remove it with \`cog image rm a\`, then build again$`,
      'm',
    ),
  );
  assert.match(removed.stderr, /^Freed [0-9.]+ \w*B \(3 blobs\)$/m);
  const left = await blobsIn(store.root);
  // b's manifest, config and own layer went; the layer a's remains name, a's blobs and the orphan stay
  assert.deepEqual(
    [...before].filter((d) => !left.has(d)).sort(),
    [b.digest, configB.digest, onlyB.digest].sort(),
  );
  for (const kept of [shared, configA, afterCut, cut, orphan, c]) assert.ok(left.has(kept.digest));
  assert.deepEqual(
    (await listStore(store)).images.map((i) => i.name),
    ['a', 'c'],
  );

  // removing the damaged image as the warning says: the store is sound again, and everything unused goes
  const mended = await exec(cog, ['image', 'rm', 'a'], { env });
  assert.equal(mended.code, 0, mended.stderr);
  assert.doesNotMatch(mended.stderr, /warning/);
  assert.deepEqual([...(await blobsIn(store.root))].sort(), [...(await store.blobsOf(c.digest))].sort());
});

test('the collection after a build beside a damaged image removes the replaced image, keeps the rest, and warns once', async () => {
  const store = await newStore('build-beside-damaged');
  const shared = await putBlob(store.root, layerType, 'base layer');
  const old = await putImage(store.root, 'old', ['base layer', 'source v1']);
  await store.tag('b', old);
  // a's manifest is cut short after the shared layer: what came after the cut is unknown
  const { configA, afterCut, cut } = await addCutImage(store, 'a', shared);
  const orphan = await putBlob(store.root, layerType, 'a write no name reached');
  // the build files its new image under b
  const next = await putImage(store.root, 'next', ['base layer', 'source v2']);
  const previous = await store.tag('b', next);
  assert.equal(previous?.digest, old.digest);
  const before = await blobsIn(store.root);

  let said = '';
  const stderr = new PassThrough().on('data', (chunk: Buffer) => (said += chunk.toString()));
  await collectStoreGarbage(store, stderr, previous);
  const left = await blobsIn(store.root);
  const oldConfig = sha256(JSON.stringify({ name: 'old', architecture: 'amd64', os: 'linux' }));
  assert.deepEqual(
    [...before].filter((d) => !left.has(d)).sort(),
    [old.digest, oldConfig, sha256('source v1')].sort(),
    'only what the replaced image alone used goes',
  );
  // the orphan may be a's layer after the cut as much as a stopped write: it stays
  for (const kept of [shared, configA, afterCut, cut, orphan, next]) assert.ok(left.has(kept.digest));
  assert.match(
    said,
    new RegExp(
      `^cog: warning: image a in the local image store is damaged \\(manifest ${cut.digest} is unreadable: [^\\n]+\\); the blobs it may use were kept: remove it with \`cog image rm a\`, then build again\\n$`,
    ),
    'one warning, naming the damaged image and the command that removes it',
  );

  // a new name (nothing replaced): nothing may go but staging files, and the warning is the same
  said = '';
  await collectStoreGarbage(store, stderr, undefined);
  assert.deepEqual(await blobsIn(store.root), left);
  assert.match(
    said,
    /^cog: warning: image a in the local image store is damaged .*`cog image rm a`, then build again\n$/,
  );
});

test('collecting in a store that does not exist does nothing and makes no directory', async () => {
  const root = join(scratch, 'never-made');
  assert.deepEqual(await new ImageStore(root).collectGarbage(), { blobs: 0, bytes: 0, skipped: false });
  assert.equal(existsSync(root), false);
});

test('cog inspect --local on an image whose manifest or config is cut short names the blob damaged', async () => {
  const store = new ImageStore(join(scratch, 'damaged-json'));
  const config = await putBlob(store.root, configType, '{"config":{"Labels":{');
  const manifest = await putBlob(
    store.root,
    manifestType,
    JSON.stringify({ schemaVersion: 2, mediaType: manifestType, config, layers: [] }),
  );
  const cutManifest = await putBlob(store.root, manifestType, '{"schemaVersion":2,"config":{"dig');
  // written as is: tagging would refuse the cut manifest (its collection reads every manifest)
  const named = (d: Descriptor, name: string) => ({ ...d, annotations: { [refNameAnnotation]: name } });
  await writeFile(
    join(store.root, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        named(manifest, 'whole-manifest:v1'),
        named(cutManifest, 'cut-manifest:v1'),
        named(manifest, 'same-image:v2'),
      ],
    }),
  );
  assert.deepEqual(await store.namesUsing(config.digest), ['whole-manifest:v1', 'same-image:v2']);
  assert.deepEqual(await store.namesUsing(cutManifest.digest), ['cut-manifest:v1']);
  assert.deepEqual(await store.namesUsing(sha256('elsewhere')), []);
  // the hint names every image that uses the blob: removing them all drops it
  for (const [name, digest, users] of [
    ['whole-manifest:v1', config.digest, 'whole-manifest:v1 same-image:v2'],
    ['cut-manifest:v1', cutManifest.digest, 'cut-manifest:v1'],
  ] as const)
    await assert.rejects(
      inspectLocal(store, name, { os: 'linux', architecture: 'amd64' }),
      (err: unknown) => {
        assert.ok(err instanceof CogError, String(err));
        assert.equal(
          err.message,
          `blob ${digest} of ${name} in the local image store is not JSON: it is damaged`,
        );
        assert.equal(
          err.hint,
          `remove the images that use it (\`cog image rm ${users}\`, which drops blobs no image uses), then build again; a build alone keeps the damaged copy`,
        );
        return true;
      },
    );
});

test('a store path that is a file, or under one, is refused naming COG_IMAGE_STORE (was an internal error)', async () => {
  const dir = join(scratch, 'store-path');
  await mkdir(dir);
  const file = join(dir, 'file');
  await writeFile(file, 'x');
  assert.equal(imageStoreDir({ COG_IMAGE_STORE: join(dir, 'new') }), join(dir, 'new'), 'made when missing');
  assert.equal(imageStoreDir({ COG_IMAGE_STORE: dir }), dir);
  for (const root of [file, join(file, 'below')])
    assert.throws(
      () => imageStoreDir({ COG_IMAGE_STORE: root }),
      (err: unknown) =>
        err instanceof CogError &&
        err.message === `the local image store COG_IMAGE_STORE=${root} is not a directory` &&
        /point COG_IMAGE_STORE at a directory/.test(err.hint ?? ''),
    );
  assert.throws(
    () => imageStoreDir({ XDG_DATA_HOME: file }),
    (err: unknown) =>
      err instanceof CogError &&
      err.message ===
        `the local image store ${file}/cog-ts/images (in XDG_DATA_HOME=${file}) is not a directory` &&
      /^point XDG_DATA_HOME at a directory/.test(err.hint ?? ''),
  );
});

test('a store path through a symbolic link to nothing is refused naming the link and the variable (was an internal error)', async () => {
  const dir = join(scratch, 'dangling-store');
  await mkdir(dir);
  const link = join(dir, 'link');
  const target = join(dir, 'nothere', 'x');
  await symlink(target, link);
  const throughLink = `${link} is a symbolic link to ${target}, which does not exist`;
  assert.throws(
    () => imageStoreDir({ COG_IMAGE_STORE: join(link, 'images') }),
    (err: unknown) =>
      err instanceof CogError &&
      err.message === `the local image store COG_IMAGE_STORE=${link}/images cannot be made: ${throughLink}` &&
      err.hint ===
        `make the link's target a directory (\`mkdir -p ${target}\`), or point COG_IMAGE_STORE at a directory (it is made when missing), or unset it`,
  );
  assert.throws(
    () => imageStoreDir({ XDG_DATA_HOME: link }),
    (err: unknown) =>
      err instanceof CogError &&
      err.message ===
        `the local image store ${link}/cog-ts/images (in XDG_DATA_HOME=${link}) cannot be made: ${throughLink}` &&
      /point XDG_DATA_HOME at a directory/.test(err.hint ?? ''),
  );
  assert.throws(
    () => imageStoreDir({ HOME: link }),
    (err: unknown) =>
      err instanceof CogError &&
      err.message ===
        `the local image store ${link}/.local/share/cog-ts/images cannot be made: ${throughLink}`,
  );
  // a link to a directory is a directory
  await mkdir(target, { recursive: true });
  assert.equal(imageStoreDir({ COG_IMAGE_STORE: join(link, 'images') }), join(link, 'images'));
  await rm(target, { recursive: true });
  // the store's own mkdirs name the store too, for a path that went bad after the check
  await assert.rejects(new ImageStore(join(link, 'images')).lease(), (err: unknown) => {
    assert.ok(err instanceof CogError, String(err));
    assert.equal(
      err.message,
      `cannot make ${link}/images for the local image store ${link}/images (ENOTDIR)`,
    );
    assert.match(err.hint ?? '', /set COG_IMAGE_STORE/);
    return true;
  });
  // `cog build` stops on it before building, as a user error
  const project = join(dir, 'project');
  await cp(join(repoRoot, 'fixtures', 'models', 'hello'), project, { recursive: true });
  const build = await exec(cog, ['build', '-t', 'x:y'], {
    cwd: project,
    env: {
      ...process.env,
      HOME: dir,
      COG_IMAGE_STORE: join(link, 'images'),
      BUILDKIT_HOST: `unix://${dir}/none.sock`,
    },
  });
  assert.equal(build.code, 1, build.stderr);
  assert.match(build.stderr, /^cog: error: the local image store COG_IMAGE_STORE=.* cannot be made: /m);
  assert.doesNotMatch(build.stderr, /internal error/);
});

test('an index.json that is not JSON is named as such, with a hint that keeps the blobs', async () => {
  const dir = join(scratch, 'bad-index');
  await mkdir(dir);
  await writeFile(join(dir, 'index.json'), '{bad');
  await assert.rejects(new ImageStore(dir).index(), (err: unknown) => {
    assert.ok(err instanceof CogError);
    assert.match(err.message, new RegExp(`^the image store index ${dir}/index\\.json is not JSON \\(`));
    assert.match(err.hint ?? '', /^move the file away/);
    return true;
  });
});

test('a name whose manifest blob is missing is damaged for inspect and run, not looked up in a registry; image rm removes it', async () => {
  const store = await newStore('missing-manifest');
  const image = await putImage(store.root, 'lost', ['l']);
  await store.tag('lost:1', image);
  await store.tag('lost-too:1', image);
  await rm(join(store.root, 'blobs', 'sha256', image.digest.slice(7)));
  for (const ref of ['lost:1', 'docker.io/library/lost:1'])
    await assert.rejects(findStoredImage(store, ref), (err: unknown) => {
      assert.ok(err instanceof CogError, String(err));
      assert.equal(
        err.message,
        `manifest ${image.digest} of ${ref} is missing from the local image store: it is damaged`,
      );
      assert.equal(err.hint, 'remove it (`cog image rm lost:1 lost-too:1`), then build it again');
      return true;
    });
  assert.equal(await findStoredImage(store, 'elsewhere:1'), undefined);
  // the CLI: inspect says so (it asked docker.io before); rm takes the name, normalised too
  const env = { ...process.env, HOME: store.root, COG_IMAGE_STORE: store.root };
  const inspected = await exec(cog, ['inspect', 'lost:1'], { env, cwd: store.root });
  assert.equal(inspected.code, 1);
  assert.match(
    inspected.stderr,
    /^cog: error: manifest sha256:\S+ of lost:1 is missing from the local image store: it is damaged$/m,
  );
  assert.doesNotMatch(inspected.stderr, /docker\.io|registry/);
  const removed = await exec(cog, ['image', 'rm', 'docker.io/library/lost:1', 'lost-too:1'], {
    env,
    cwd: store.root,
  });
  assert.equal(removed.code, 0, removed.stderr);
  assert.deepEqual((await store.index()).manifests, []);
});

test('an image whose config blob is missing is damaged for inspect (it was an internal ENOENT error)', async () => {
  const store = await newStore('missing-config');
  const image = await putImage(store.root, 'noconfig', ['n']);
  await store.tag('noconfig:1', image);
  const manifest = JSON.parse((await store.readBlob(image.digest)).toString('utf8')) as {
    config: { digest: string };
  };
  await rm(join(store.root, 'blobs', 'sha256', manifest.config.digest.slice(7)));
  const env = { ...process.env, HOME: store.root, COG_IMAGE_STORE: store.root };
  for (const args of [
    ['inspect', 'noconfig:1'],
    ['inspect', '--json', 'noconfig:1'],
  ]) {
    const out = await exec(cog, args, { env, cwd: store.root });
    assert.equal(out.code, 1, out.stderr);
    assert.equal(
      out.stderr,
      `cog: error: blob ${manifest.config.digest} of noconfig:1 is missing from the local image store: it is damaged\n` +
        'hint: remove it (`cog image rm noconfig:1`), then build it again\n',
    );
  }
});

test('ociIndexProblem names what keeps JSON from being an index the store reads', () => {
  const entry = { mediaType: manifestType, digest: sha256('m'), size: 2 };
  assert.equal(ociIndexProblem({ schemaVersion: 2, manifests: [] }), undefined);
  assert.equal(
    ociIndexProblem({ schemaVersion: 2, manifests: [entry, { ...entry, annotations: {} }] }),
    undefined,
  );
  assert.equal(ociIndexProblem([]), 'it is a list, not an object');
  assert.equal(ociIndexProblem(null), 'it is null, not an object');
  assert.equal(ociIndexProblem('x'), 'it is a string, not an object');
  assert.equal(ociIndexProblem({ schemaVersion: 2 }), 'it has no "manifests" list');
  assert.equal(ociIndexProblem({ manifests: {} }), 'it has no "manifests" list');
  for (const bad of [
    null,
    'x',
    { ...entry, digest: 1 },
    { ...entry, size: '2' },
    { ...entry, annotations: [] },
  ])
    assert.match(ociIndexProblem({ manifests: [entry, bad] }) ?? '', /^manifests\[1\] is not a descriptor/);
});

test('an index.json that is JSON but no index is named damaged like one that is not JSON (was a TypeError)', async () => {
  const dir = join(scratch, 'wrong-shape-index');
  await mkdir(dir);
  const file = join(dir, 'index.json');
  for (const [text, why] of [
    ['[]', 'it is a list, not an object'],
    ['{"schemaVersion":2,"manifests":[null]}', 'manifests[0] is not a descriptor'],
  ] as const) {
    await writeFile(file, text);
    await assert.rejects(new ImageStore(dir).index(), (err: unknown) => {
      assert.ok(err instanceof CogError, String(err));
      assert.ok(
        err.message.startsWith(`the image store index ${file} is not an OCI image index (${why}`),
        err.message,
      );
      assert.match(err.hint ?? '', /^move the file away/);
      return true;
    });
    // the commands that read it say so, as user errors
    const env = { ...process.env, HOME: dir, COG_IMAGE_STORE: dir };
    for (const args of [
      ['image', 'ls'],
      ['inspect', '--local', 'hello'],
      ['image', 'rm', 'hello'],
    ]) {
      const result = await exec(cog, args, { env, cwd: dir });
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /^cog: error: the image store index .* is not an OCI image index /m);
    }
  }
});

test("cog inspect's --platform: one platform, in any case; a list is refused as such", () => {
  assert.deepEqual(parsePlatform('LINUX/AMD64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.throws(
    () => parsePlatform('linux/amd64,linux/arm64'),
    /^CogError: --platform linux\/amd64,linux\/arm64: cog inspect shows one platform's image$/,
  );
  assert.throws(() => parsePlatform('linux'), /is not os\/architecture\[\/variant\]/);
  assert.throws(() => parsePlatform('linux//v7'), /is not os\/architecture\[\/variant\]/);
  // as buildx reads it: a bare architecture is Linux's; aarch64 is arm64, whose v8 is no variant
  assert.deepEqual(parsePlatform('arm64'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/aarch64/v8'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('Windows/AMD64'), { os: 'windows', architecture: 'amd64' });
});
