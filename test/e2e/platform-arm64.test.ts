// `cog build --platform linux/arm64` of a CPU model on the test bed, whose python:3.11-slim and uv images
// are multi-platform and whose buildkitd runs arm64 under QEMU (scripts/testbed: binfmt_misc): the image
// is an arm64 image on the arm64 base, and its smoke test (the server started inside it, emulated)
// answers; the base it names is the index's arm64 image, not its amd64 one.
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec, execOk } from '../support/exec.js';
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
}

async function configOf(ref: string, arch: string): Promise<ImageConfig> {
  const out = await execOk('skopeo', [
    'inspect',
    '--config',
    '--tls-verify=false',
    '--override-arch',
    arch,
    `docker://${ref}`,
  ]);
  return JSON.parse(out.stdout) as ImageConfig;
}

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
