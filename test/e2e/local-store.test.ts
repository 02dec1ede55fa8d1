// The content store the CLI serves over the session, end to end: `cog predict IMAGE` runs an image that
// exists only in the local image store (the daemon reads it as an oci-layout source), and a local cache
// exported by one daemon makes a fresh daemon's build CACHED.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
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
  'cog predict IMAGE runs an image from the local store, never asking a registry',
  { timeout: 900_000 },
  async () => {
    const env = { ...tb.env, COG_IMAGE_STORE: join(scratchDir, 'store') };
    const name = `local-hello-${tag}:test`;
    await execOk(cog, ['build', '-t', name, '--progress', 'quiet'], { env, cwd: join(fixtures, 'hello') });

    const out = await exec(cog, ['predict', name, '-i', 'name=store', '--progress', 'plain'], {
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
      const fresh = await exec(cog, ['predict', name, '-i', 'name=fresh', '--progress', 'plain'], {
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
    const missing = await exec(cog, ['predict', name, '-i', 'name=x', '--progress', 'plain'], {
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
