// The content store the CLI serves over the session, end to end: `cog run IMAGE` runs an image that
// exists only in the local image store (the daemon reads it as an oci-layout source), and a local cache
// exported by one daemon makes a fresh daemon's build CACHED.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec, execOk } from '../support/exec.js';
import { stepsFromPlainProgress } from '../support/plain-steps.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const fixtures = join(repoRoot, 'fixtures', 'models');
let tb: Testbed;
let scratchDir: string;
const tag = Date.now().toString(36);

const tempDir = tempDirsRemovedAfterTests();

before(async () => {
  tb = await ensureTestbed();
  scratchDir = await tempDir('cogts-local-store-');
});

/** The CLI's private buildkitd with an empty cache and the test bed's registry config. */
function freshDaemonEnv(env: NodeJS.ProcessEnv, state: string): NodeJS.ProcessEnv {
  const fresh: NodeJS.ProcessEnv = {
    ...env,
    XDG_STATE_HOME: state,
    TMPDIR: state,
    COG_BUILDKITD_CONFIG: join(tb.stateDir, 'buildkitd.toml'),
  };
  delete fresh.BUILDKIT_HOST;
  return fresh;
}

test(
  'cog run IMAGE runs an image from the local store, never asking a registry',
  { timeout: 900_000 },
  async () => {
    const env = { ...tb.env, COG_IMAGE_STORE: join(scratchDir, 'store') };
    const name = `local-hello-${tag}:test`;
    await execOk(cog, ['build', '-t', name, '--progress', 'quiet'], { env, cwd: join(fixtures, 'hello') });

    const out = await exec(cog, ['run', name, '-i', 'name=store', '--progress', 'plain'], {
      env,
      cwd: scratchDir,
    });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout.trim(), 'hello store');
    assert.match(out.stderr, /local image store/, 'the metadata comes from the local store');
    assert.match(out.stderr, /oci-layout:\/\//, 'the image is read as an oci-layout source');
    assert.doesNotMatch(out.stderr, /docker-image:\/\/[^\s]*local-hello/, 'no registry pull of the image');

    // a daemon that never saw the image: every layer streams from the store over the session
    const state = await mkdtemp(join(tmpdir(), 'cogts-local-store-daemon-'));
    try {
      const fresh = await exec(cog, ['run', name, '-i', 'name=fresh', '--progress', 'plain'], {
        env: freshDaemonEnv(env, state),
        cwd: scratchDir,
      });
      assert.equal(fresh.code, 0, fresh.stderr);
      assert.equal(fresh.stdout.trim(), 'hello fresh');
      assert.match(
        fresh.stderr,
        /extracting sha256:/,
        'the fresh daemon unpacks layers it read from the store',
      );
    } finally {
      await rm(state, { recursive: true, force: true });
    }

    // without the store the name means a registry image, which does not exist
    const missing = await exec(cog, ['run', name, '-i', 'name=x', '--progress', 'plain'], {
      env: { ...env, COG_IMAGE_STORE: join(scratchDir, 'empty-store') },
      cwd: scratchDir,
    });
    assert.notEqual(missing.code, 0);
  },
);

test(
  'a type=local cache written by one daemon makes a fresh daemon CACHED',
  { timeout: 1_200_000 },
  async () => {
    const project = join(scratchDir, 'cached-project');
    await cp(join(fixtures, 'hello'), project, { recursive: true });
    // a fresh source file: nothing of this project is in any daemon's cache yet
    await cp(join(project, 'predict.py'), join(project, `extra-${tag}.py`));
    const cacheDir = join(scratchDir, 'cache');
    const env = { ...tb.env, COG_IMAGE_STORE: join(scratchDir, 'store') };

    const first = await execOk(
      cog,
      [
        'build',
        '-t',
        `cached-${tag}:a`,
        '--progress',
        'plain',
        '--cache-to',
        `type=local,dest=${cacheDir},mode=max`,
      ],
      { env, cwd: project },
    );
    const firstSteps = stepsFromPlainProgress(first.stderr);
    assert.ok(firstSteps.ran.length > 0, 'the first build runs steps');
    const index = JSON.parse(await readFile(join(cacheDir, 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations?: Record<string, string> }[];
    };
    assert.equal(index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'], 'latest');

    // a daemon with an empty cache: the CLI's private buildkitd with the test bed's registry config
    const state = await mkdtemp(join(tmpdir(), 'cogts-local-cache-'));
    try {
      const fresh = freshDaemonEnv(env, state);
      const second = await execOk(
        cog,
        [
          'build',
          '-t',
          `cached-${tag}:b`,
          '--progress',
          'plain',
          '--cache-from',
          `type=local,src=${cacheDir}`,
        ],
        { env: fresh, cwd: project },
      );
      const secondSteps = stepsFromPlainProgress(second.stderr);
      const imageSteps = firstSteps.ran.filter((s) => !/smoke|freeze/i.test(s));
      assert.ok(imageSteps.length > 0);
      for (const step of imageSteps) {
        assert.ok(
          secondSteps.cached.includes(step),
          `"${step}" is CACHED on the fresh daemon (ran: ${JSON.stringify(secondSteps.ran)})`,
        );
      }
    } finally {
      await rm(state, { recursive: true, force: true });
    }
  },
);

/** Every blob a store's named images reach, walked from index.json (image manifests and indexes). */
async function namedBlobs(store: string): Promise<Set<string>> {
  const read = async (digest: string) =>
    JSON.parse(await readFile(join(store, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as {
      manifests?: { digest: string }[];
      config?: { digest: string };
      layers?: { digest: string }[];
    };
  const reached = new Set<string>();
  const walk = async (digest: string) => {
    reached.add(digest);
    const doc = await read(digest);
    for (const m of doc.manifests ?? []) await walk(m.digest);
    for (const d of [doc.config, ...(doc.layers ?? [])]) if (d) reached.add(d.digest);
  };
  const index = JSON.parse(await readFile(join(store, 'index.json'), 'utf8')) as {
    manifests: { digest: string }[];
  };
  for (const m of index.manifests) await walk(m.digest);
  return reached;
}

async function storeBlobs(store: string): Promise<Map<string, number>> {
  const dir = join(store, 'blobs', 'sha256');
  const sizes = new Map<string, number>();
  for (const hex of await readdir(dir)) sizes.set(`sha256:${hex}`, (await stat(join(dir, hex))).size);
  return sizes;
}

test(
  'rebuilding a name after a source edit removes the old image from the store, keeping what is named',
  { timeout: 900_000 },
  async () => {
    const project = join(scratchDir, 'gc-project');
    await cp(join(fixtures, 'hello'), project, { recursive: true });
    // 16 MiB that gzip cannot shrink: each source layer is at least that big
    await writeFile(join(project, 'weights.bin'), randomBytes(16 * 1024 * 1024));
    const store = join(scratchDir, 'gc-store');
    const env = { ...tb.env, COG_IMAGE_STORE: store };
    const name = `gc-${tag}:dev`;
    const build = () => execOk(cog, ['build', '-t', name, '--progress', 'quiet'], { env, cwd: project });
    const digestOf = (stderr: string) => /@(sha256:[0-9a-f]{64})/.exec(stderr)?.[1];

    await execOk(cog, ['build', '-t', `gc-${tag}:other`, '--progress', 'quiet'], {
      env,
      cwd: join(fixtures, 'hello'),
    });
    const first = digestOf((await build()).stderr);
    const sizesAfterFirst = await storeBlobs(store);
    const totalAfterFirst = [...sizesAfterFirst.values()].reduce((a, b) => a + b, 0);
    assert.ok(first && sizesAfterFirst.has(first));

    for (const edit of ['v2', 'v3']) {
      await writeFile(
        join(project, 'predict.py'),
        `${await readFile(join(project, 'predict.py'), 'utf8')}\n# ${edit}\n`,
      );
      const second = digestOf((await build()).stderr);
      assert.ok(second && second !== first, 'the edit made a new image');
    }
    const sizes = await storeBlobs(store);
    const named = await namedBlobs(store);
    assert.deepEqual(
      [...sizes.keys()].sort(),
      [...named].sort(),
      'the store holds exactly what its names reach',
    );
    assert.equal(sizes.has(first), false, 'the first image under the name is gone');
    const total = [...sizes.values()].reduce((a, b) => a + b, 0);
    assert.ok(
      Math.abs(total - totalAfterFirst) < 1024 * 1024,
      `two rebuilds left the store at ${total} bytes, not ${totalAfterFirst} (+16 MiB per kept source layer)`,
    );
    const leases = await readdir(join(store, 'leases'));
    assert.deepEqual(leases, [], 'each build gave its lease back');

    // the name still runs, and the other image is untouched
    const out = await exec(cog, ['run', name, '-i', 'name=gc', '--progress', 'quiet'], {
      env,
      cwd: scratchDir,
    });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout.trim(), 'hello gc');

    // cog image ls / rm: the store's own listing and removal
    const ls = async () =>
      JSON.parse((await execOk(cog, ['image', 'ls', '--json'], { env, cwd: scratchDir })).stdout) as {
        images: { name: string; digest: string; size: number }[];
      };
    const listed = await ls();
    assert.deepEqual(
      listed.images.map((i) => i.name),
      [`gc-${tag}:dev`, `gc-${tag}:other`],
    );
    const dev = listed.images[0]!;
    assert.ok(dev.size > 16 * 1024 * 1024, `the listed size ${dev.size} includes the 16 MiB source layer`);

    const refused = await exec(cog, ['image', 'rm', `gc-${tag}:other`, 'not-there:1'], {
      env,
      cwd: scratchDir,
    });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /no image named not-there:1 in the local image store/);
    assert.equal((await ls()).images.length, 2, 'a missing name removes nothing');

    const removed = await execOk(cog, ['image', 'rm', `gc-${tag}:dev`], { env, cwd: scratchDir });
    assert.equal(removed.stdout, `Removed gc-${tag}:dev\n`);
    assert.match(removed.stderr, /Freed (1[6-9]|[2-9][0-9])\.[0-9] MiB/);
    assert.deepEqual(
      (await ls()).images.map((i) => i.name),
      [`gc-${tag}:other`],
    );
    const left = await storeBlobs(store);
    assert.deepEqual([...left.keys()].sort(), [...(await namedBlobs(store))].sort());
    assert.equal(left.has(dev.digest), false);
  },
);

test(
  'a damaged unrelated image does not stop the collection after a build: the build warns naming it, removes the replaced image, keeps what the damaged one may use',
  { timeout: 900_000 },
  async () => {
    const store = join(scratchDir, 'damaged-store');
    const env = { ...tb.env, COG_IMAGE_STORE: store };
    const damagedName = `damaged-${tag}:a`;
    const name = `beside-damaged-${tag}:b`;
    const digestOf = (stderr: string) => /@(sha256:[0-9a-f]{64})/.exec(stderr)?.[1];
    const damaged = digestOf(
      (
        await execOk(cog, ['build', '-t', damagedName, '--progress', 'quiet'], {
          env,
          cwd: join(fixtures, 'hello'),
        })
      ).stderr,
    );
    assert.ok(damaged);
    // a's manifest cut short: it still names its config and first layers, not the rest
    const manifestFile = join(store, 'blobs', 'sha256', damaged.slice(7));
    const whole = await readFile(manifestFile, 'utf8');
    const cut = whole.slice(0, Math.floor(whole.length / 2));
    await writeFile(manifestFile, cut);
    const namedByCut = [...new Set(cut.match(/sha256:[0-9a-f]{64}/g) ?? [])];
    assert.ok(namedByCut.length > 0);

    // b, a different image, built twice: the second build replaces the first under its name
    const project = join(scratchDir, 'beside-damaged-project');
    await cp(join(fixtures, 'hello'), project, { recursive: true });
    const edit = async (line: string) =>
      writeFile(
        join(project, 'predict.py'),
        `${await readFile(join(project, 'predict.py'), 'utf8')}\n${line}\n`,
      );
    await edit('# b v1');
    const build = () => exec(cog, ['build', '-t', name, '--progress', 'quiet'], { env, cwd: project });
    const firstBuild = await build();
    assert.equal(firstBuild.code, 0, firstBuild.stderr);
    const first = digestOf(firstBuild.stderr)!;
    const firstManifest = JSON.parse(
      await readFile(join(store, 'blobs', 'sha256', first.slice(7)), 'utf8'),
    ) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    // what only b's first image used: its manifest, config and source layer (the last one)
    const onlyFirst = [first, firstManifest.config.digest, firstManifest.layers.at(-1)!.digest];
    await edit('# b v2');
    const secondBuild = await build();
    assert.equal(secondBuild.code, 0, secondBuild.stderr);
    const second = digestOf(secondBuild.stderr)!;
    assert.notEqual(second, first, 'the edit made a new image');

    const warning = `cog: warning: image ${damagedName} in the local image store is damaged (manifest ${damaged} is unreadable: `;
    for (const r of [firstBuild, secondBuild]) {
      assert.equal(
        r.stderr.split(warning).length - 1,
        1,
        `one warning naming the damaged image:\n${r.stderr}`,
      );
      assert.ok(
        r.stderr.includes(`the blobs it may use were kept: remove it with \`cog image rm ${damagedName}\``),
        r.stderr,
      );
      assert.doesNotMatch(r.stderr, /could not remove unused blobs/);
    }
    const left = await storeBlobs(store);
    for (const digest of onlyFirst)
      assert.equal(left.has(digest), false, `${digest} of the replaced image went`);
    for (const digest of [damaged, ...namedByCut]) assert.ok(left.has(digest), `${digest} was kept`);

    // removing the damaged image as the warning says mends the store: the next build is silent
    await execOk(cog, ['image', 'rm', damagedName], { env, cwd: scratchDir });
    await edit('# b v3');
    const mended = await build();
    assert.equal(mended.code, 0, mended.stderr);
    assert.doesNotMatch(mended.stderr, /warning: image .* is damaged/);
    assert.deepEqual([...(await storeBlobs(store)).keys()].sort(), [...(await namedBlobs(store))].sort());
  },
);

test(
  'a layer cut short in the store is named by the build (not "up to date") and by cog run; removing the image mends it',
  { timeout: 600_000 },
  async () => {
    const store = join(scratchDir, 'cut-layer-store');
    const env = { ...tb.env, COG_IMAGE_STORE: store, XDG_CACHE_HOME: join(scratchDir, 'cut-layer-cache') };
    const name = `cut-${tag}:a`;
    const cwd = join(fixtures, 'hello');
    const build = () =>
      exec(cog, ['build', '-t', name, '--progress', 'quiet', '--use-cog-base-image=false'], { env, cwd });
    const built = await build();
    assert.equal(built.code, 0, built.stderr);
    const digest = /@(sha256:[0-9a-f]{64})/.exec(built.stderr)?.[1];
    assert.ok(digest, built.stderr);
    const manifest = JSON.parse(await readFile(join(store, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as {
      layers: { digest: string; size: number }[];
    };
    // a layer below the source layer (which a source-only rebuild writes anew)
    const layer = manifest.layers[0];
    assert.ok(layer && layer.size > 100);
    await truncate(join(store, 'blobs', 'sha256', layer.digest.slice(7)), 100);
    const damaged = new RegExp(
      `^cog: error: blob ${layer.digest} in (the image built as )?${name} in the local image store has 100 bytes, not ${layer.size}: it is damaged \\(cut short\\)$`,
      'm',
    );
    const hint = new RegExp(
      `^hint: remove the images that use it \\(\`cog image rm ${name}\`.*then build again`,
      'm',
    );

    // the build's record said nothing changed; the store's copy is not the image any more
    const rebuilt = await build();
    assert.equal(rebuilt.code, 1, rebuilt.stderr);
    assert.doesNotMatch(rebuilt.stderr, /up to date/);
    assert.match(rebuilt.stderr, damaged);
    assert.match(rebuilt.stderr, hint);
    // the daemon would read it and say only "short read"
    const run = await exec(cog, ['run', name, '-i', 'name=x'], { env, cwd });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, damaged);
    assert.doesNotMatch(run.stderr, /short read/);

    // the hint mends it
    await execOk(cog, ['image', 'rm', name], { env });
    await execOk(cog, ['build', '-t', name, '--progress', 'quiet', '--use-cog-base-image=false'], {
      env,
      cwd,
    });
    const answer = await execOk(cog, ['run', name, '-i', 'name=x'], { env, cwd });
    assert.equal(answer.stdout.trim(), 'hello x');
  },
);
