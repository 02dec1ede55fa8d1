// `cog build`'s up-to-date check: the same command with nothing changed is answered from its build
// record without buildkitd (same digest, the warnings again); --pull, an edit, a changed variable, a
// lost store image or a moved registry tag send it back to buildkitd.
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImageStore } from '../../src/image/store.js';
import { buildRun, helloCopy } from '../support/build-runs.js';
import { exec, execOk } from '../support/exec.js';
import { writeDockerLogin } from '../support/docker-config.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');

const tempDir = tempDirsRemovedAfterTests();
const tag = Date.now().toString(36);
let tb: Testbed;
let scratchDir: string;

before(async () => {
  tb = await ensureTestbed();
  scratchDir = await tempDir('cogts-uptodate-');
});

const upToDate = /^cog: up to date: nothing this build reads has changed since \S+Z/m;

/** A copy of the hello model whose cog.yaml uses the deprecated `predict:` key (one warning). */
function helloProject(name: string): Promise<string> {
  return helloCopy(join(scratchDir, name), (config) => config.replace(/^run:/m, 'predict:'));
}

function build(project: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const env = {
    ...tb.env,
    COG_IMAGE_STORE: join(scratchDir, 'store'),
    XDG_CACHE_HOME: join(scratchDir, 'cache'),
    ...extraEnv,
  };
  return buildRun(project, args, env);
}

test(
  'a repeated build to the local store is answered from its record until something changes',
  { timeout: 600_000 },
  async () => {
    const project = await helloProject('project-store');
    const args = ['-t', `uptodate-store:${tag}`];
    const first = await build(project, args);
    assert.ok(first.solved);
    assert.match(first.stderr, /^cog: warning: .*predict/m);

    const again = await build(project, args);
    assert.match(again.stderr, upToDate);
    assert.equal(again.solved, false, `no step was solved:\n${again.stderr}`);
    assert.doesNotMatch(again.stderr, /^cog: build /m, 'no buildkitd connection');
    assert.equal(again.digest, first.digest);
    assert.match(again.stderr, /^cog: warning: .*predict/m, 'the warning is shown again');
    assert.match(again.stderr, /local image store/);
    // how the build is shown is not part of it: another progress mode or --no-color is still up to date
    const shownOtherwise = await build(project, [...args, '--progress', 'quiet', '--no-color']);
    assert.match(shownOtherwise.stderr, upToDate);
    assert.equal(shownOtherwise.solved, false, shownOtherwise.stderr);
    assert.equal(shownOtherwise.digest, first.digest);
    // …but a progress mode that is none is refused as it is without a record (it was answered: exit 0)
    for (const [extraArgs, extraEnv] of [
      [['--progress', 'bogus'], {}],
      [[], { BUILDKIT_PROGRESS: 'bogus' }],
    ] as const) {
      const refused = await exec(cog, ['build', ...args, ...extraArgs, '--use-cog-base-image=false'], {
        cwd: project,
        env: {
          ...tb.env,
          COG_IMAGE_STORE: join(scratchDir, 'store'),
          XDG_CACHE_HOME: join(scratchDir, 'cache'),
          ...extraEnv,
        },
      });
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(
        refused.stderr,
        /^cog: error: invalid progress mode (--progress |BUILDKIT_PROGRESS=)"bogus"$/m,
      );
      assert.doesNotMatch(refused.stderr, upToDate);
    }
    // --progress last with no value: refused as anywhere else (it was answered as up to date)
    const valueless = await exec(cog, ['build', ...args, '--use-cog-base-image=false', '--progress'], {
      cwd: project,
      env: {
        ...tb.env,
        COG_IMAGE_STORE: join(scratchDir, 'store'),
        XDG_CACHE_HOME: join(scratchDir, 'cache'),
      },
    });
    assert.equal(valueless.code, 1, valueless.stderr);
    assert.match(valueless.stderr, /^cog: error: --progress needs a value/m);

    // the global --registry flag: recorded with the variable it sets, and answered the same way
    const withRegistry = [...args, '--registry', tb.registry];
    const registryFirst = await build(project, withRegistry);
    assert.ok(registryFirst.solved, 'another --registry is another build');
    const registryAgain = await build(project, withRegistry);
    assert.match(registryAgain.stderr, upToDate);
    assert.equal(registryAgain.solved, false, registryAgain.stderr);
    assert.equal(registryAgain.digest, first.digest);

    // --pull solves (every step cached), and writes no record of its own
    const pulled = await build(project, [...args, '--pull']);
    assert.ok(pulled.solved);
    assert.deepEqual(
      pulled.steps.ran,
      [],
      `--pull on an unchanged project ran: ${pulled.steps.ran.join(', ')}`,
    );
    assert.equal(pulled.digest, first.digest);

    // a predict.py edit: answered source-only (test/e2e/source-only.test.ts), a new image
    await writeFile(
      join(project, 'predict.py'),
      `${await readFile(join(project, 'predict.py'), 'utf8')}\n# edit ${Date.now()}\n`,
    );
    const edited = await build(project, args);
    assert.equal(edited.solved, false, edited.stderr);
    assert.match(edited.stderr, /^cog: nothing below the project's files changed/m);
    assert.equal(
      edited.stderr.match(/^cog: warning: .*predict/gm)?.length,
      1,
      `the warning, once:\n${edited.stderr}`,
    );
    assert.notEqual(edited.digest, first.digest);
    // the edit was too recent to be recorded; a build after the racy window records, then answers
    await sleep(2100);
    const settled = await build(project, args);
    assert.equal(settled.digest, edited.digest);
    const answered = await build(project, args);
    assert.match(answered.stderr, upToDate);
    assert.equal(answered.digest, edited.digest);

    // the image's name gone from the store: made again (its layers are still there), and it is back
    await rm(join(scratchDir, 'store', 'index.json'));
    const restored = await build(project, args);
    assert.doesNotMatch(restored.stderr, upToDate);
    assert.equal(restored.digest, edited.digest);
    assert.equal((await new ImageStore(join(scratchDir, 'store')).resolve(args[1]!))?.digest, edited.digest);

    // another value of a variable a build reads is another build
    const otherEnv = await build(project, args, { SOURCE_DATE_EPOCH: '1700000000' });
    assert.ok(otherEnv.solved);
  },
);

test(
  'a repeated --push checks the tag in the registry, and pushes again when it moved',
  { timeout: 600_000 },
  async () => {
    const project = await helloProject('project-push');
    const ref = `${tb.registry}/cogts-test/uptodate:${tag}`;
    const first = await build(project, ['-t', ref, '--push', '--smoke-test']);
    assert.ok(first.solved);

    const again = await build(project, ['-t', ref, '--push', '--smoke-test']);
    assert.match(again.stderr, upToDate);
    assert.match(again.stderr, /and pushed$/m);
    assert.match(
      again.stderr,
      /^Smoke test: \/health-check READY; prediction succeeded/m,
      'the smoke result again',
    );
    assert.equal(again.digest, first.digest);

    // someone else's image under the tag: the next build pushes ours again
    await execOk('skopeo', [
      'copy',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${tb.registry}/library/python:3.11-slim`,
      `docker://${ref}`,
    ]);
    const moved = await build(project, ['-t', ref, '--push', '--smoke-test']);
    assert.ok(moved.solved, 'the moved tag is noticed');
    const inspected = JSON.parse(
      (await execOk('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).stdout,
    ) as { Digest: string };
    assert.equal(inspected.Digest, first.digest);
  },
);

test(
  'a repeated --push to a registry that wants credentials is checked with them',
  { timeout: 600_000 },
  async () => {
    const project = await helloProject('project-auth');
    const configDir = await writeDockerLogin(
      join(scratchDir, 'docker-config'),
      tb.authRegistry,
      tb.authUser,
      tb.authPassword,
    );
    const ref = `${tb.authRegistry}/cogts-test/uptodate-auth:${tag}`;
    const first = await build(project, ['-t', ref, '--push'], { DOCKER_CONFIG: configDir });
    assert.ok(first.solved);
    // the credential-free probe gets 401 here; the full client asks again with the credentials
    const again = await build(project, ['-t', ref, '--push'], { DOCKER_CONFIG: configDir });
    assert.match(again.stderr, upToDate);
    assert.equal(again.solved, false, again.stderr);
    assert.equal(again.digest, first.digest);
    assert.doesNotMatch(again.stderr, new RegExp(tb.authPassword), 'no credential in the output');
  },
);
