// `cog build --platform linux/arm64` of a CPU model on the test bed, whose python:3.11-slim and uv images
// are multi-platform and whose buildkitd runs arm64 under QEMU (scripts/testbed: binfmt_misc): the image
// is an arm64 image on the arm64 base, and its smoke test (the server started inside it, emulated)
// answers; the base it names is the index's arm64 image, not its amd64 one.
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec, execOk } from '../support/exec.js';
import { pushedConfig, pushedManifest } from '../support/pushed-image.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tag = Date.now().toString(36);
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;
let project: string;

before(async () => {
  tb = await ensureTestbed();
  project = join(await tempDir('cogts-arm64-'), 'hello');
  await cp(join(repoRoot, 'fixtures', 'models', 'hello'), project, { recursive: true });
});

interface ImageConfig {
  architecture: string;
  os: string;
  rootfs: { diff_ids: string[] };
  config: { Labels?: Record<string, string> };
}

const configOf = (ref: string, arch: string) => pushedConfig<ImageConfig>(ref, arch);

test(
  '--platform linux/arm64 builds an arm64 image on the arm64 base, and it answers under emulation',
  { timeout: 1_800_000 },
  async () => {
    const workers = await execOk('buildctl', ['debug', 'workers', '-v'], { env: tb.env });
    assert.match(
      workers.stdout,
      /Platforms:.*linux\/arm64/,
      "the test bed's buildkitd offers no linux/arm64: scripts/testbed up registers qemu-aarch64 with binfmt_misc",
    );
    const ref = `${tb.registry}/cogts-test/arm64-hello:${tag}`;
    const out = await exec(
      cog,
      [
        'build',
        '-t',
        ref,
        '--platform',
        'linux/arm64',
        '--use-cog-base-image=false',
        '--push',
        '--smoke-test',
        '--progress',
        'plain',
      ],
      { env: tb.env, cwd: project },
    );
    assert.equal(out.code, 0, out.stderr.slice(-4000));
    assert.match(
      out.stderr,
      /^Smoke test: \/health-check READY; prediction succeeded, output "hello world"$/m,
    );
    // the solve says which platform it asks for: BuildKit has nothing to warn about
    assert.doesNotMatch(out.stderr, /WARN: Requested platform/);

    const [image, base] = await Promise.all([
      configOf(ref, 'arm64'),
      configOf(`${tb.registry}/library/python:3.11-slim`, 'arm64'),
    ]);
    assert.equal(image.architecture, 'arm64');
    assert.equal(image.os, 'linux');
    assert.equal(base.architecture, 'arm64');
    // FROM the base's arm64 image: its layers first
    assert.deepEqual(image.rootfs.diff_ids.slice(0, base.rootfs.diff_ids.length), base.rootfs.diff_ids);
    const amd64Base = await configOf(`${tb.registry}/library/python:3.11-slim`, 'amd64');
    assert.notDeepEqual(amd64Base.rootfs.diff_ids, base.rootfs.diff_ids);
  },
);

test(
  '--platform linux/amd64,linux/arm64 builds one index of both images, each labelled and smoke-tested',
  { timeout: 1_800_000 },
  async () => {
    const ref = `${tb.registry}/cogts-test/multi-hello:${tag}`;
    const both = ['--platform', 'linux/amd64,linux/arm64', '--use-cog-base-image=false'];
    const out = await exec(
      cog,
      ['build', '-t', ref, ...both, '--push', '--smoke-test', '--progress', 'plain'],
      { env: tb.env, cwd: project },
    );
    assert.equal(out.code, 0, out.stderr.slice(-4000));
    assert.doesNotMatch(out.stderr, /WARN: Requested platforms? /);
    for (const platform of ['linux/amd64', 'linux/arm64'])
      assert.match(
        out.stderr,
        new RegExp(
          `^Smoke test \\(${platform.replace('/', '\\/')}\\): /health-check READY; prediction succeeded, output "hello world"$`,
          'm',
        ),
      );

    const index = await pushedManifest<{
      mediaType: string;
      manifests: { digest: string; platform?: { os: string; architecture: string } }[];
    }>(ref);
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(
      index.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`),
      ['linux/amd64', 'linux/arm64'],
    );
    const [amd64, arm64] = await Promise.all([configOf(ref, 'amd64'), configOf(ref, 'arm64')]);
    assert.equal(amd64.architecture, 'amd64');
    assert.equal(arm64.architecture, 'arm64');
    for (const image of [amd64, arm64]) {
      const labels = image.config.Labels ?? {};
      assert.match(labels['run.cog.pip_freeze'] ?? '', /^cog==/m, image.architecture);
      assert.equal(labels['run.cog.has_init'], 'true');
    }
    assert.equal(amd64.config.Labels?.['run.cog.config'], arm64.config.Labels?.['run.cog.config']);
    assert.notDeepEqual(amd64.rootfs.diff_ids, arm64.rootfs.diff_ids);

    // into the local store as one index; cog run picks the image of this machine's platform
    const store = { ...tb.env, COG_IMAGE_STORE: join(project, '..', 'store') };
    const stored = await exec(cog, ['build', '-t', 'multi-hello:dev', ...both, '--progress', 'quiet'], {
      env: store,
      cwd: project,
    });
    assert.equal(stored.code, 0, stored.stderr.slice(-3000));
    // the same build again is answered from its record: the store holds the index and both images
    const again = await exec(cog, ['build', '-t', 'multi-hello:dev', ...both, '--progress', 'quiet'], {
      env: store,
      cwd: project,
    });
    assert.equal(again.code, 0, again.stderr.slice(-3000));
    assert.match(again.stderr, /^cog: up to date: /m);
    const ran = await exec(cog, ['run', 'multi-hello:dev', '-i', 'name=index', '--progress', 'quiet'], {
      env: store,
      cwd: project,
    });
    assert.equal(ran.code, 0, ran.stderr.slice(-3000));
    assert.match(ran.stdout, /hello index/);

    // a docker tarball holds one platform: refused before building
    const docker = await exec(
      cog,
      ['build', ...both, '--output', `type=docker,dest=${join(project, 'x.tar')}`],
      {
        env: tb.env,
        cwd: project,
      },
    );
    assert.notEqual(docker.code, 0);
    assert.match(docker.stderr, /--output type=docker holds one platform/);
  },
);
