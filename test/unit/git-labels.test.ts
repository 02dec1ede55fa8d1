// org.opencontainers.image.revision/version: GitHub Actions' variables win; else both come from git
// (a real repository made here); outside a repository git is not asked and there are none.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gitLabels, inGitWorktree } from '../../src/build/host-facts.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

const tempDir = tempDirsRemovedAfterTests();
const noGitEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd: dir,
    env: {
      ...noGitEnv,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@x',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@x',
    },
  })
    .toString()
    .trim();
}

describe('gitLabels', () => {
  test('in a repository: the commit and `git describe --tags --dirty`, also from a subdirectory', async () => {
    const repo = await tempDir('cogts-git-');
    git(repo, 'init', '-q');
    await writeFile(join(repo, 'cog.yaml'), 'build: {}\n');
    git(repo, 'add', '.');
    git(repo, 'commit', '-q', '-m', 'first');
    git(repo, 'tag', 'v1.2.3');
    const head = git(repo, 'rev-parse', 'HEAD');
    await mkdir(join(repo, 'model'));
    assert.ok(inGitWorktree(join(repo, 'model'), noGitEnv));
    assert.deepEqual(await gitLabels(join(repo, 'model'), noGitEnv), { revision: head, version: 'v1.2.3' });
    await writeFile(join(repo, 'cog.yaml'), 'build: { gpu: false }\n');
    assert.deepEqual(await gitLabels(repo, noGitEnv), { revision: head, version: 'v1.2.3-dirty' });
  });

  test("GitHub Actions' variables win over git", async () => {
    const repo = await tempDir('cogts-git-');
    git(repo, 'init', '-q');
    const env = { ...noGitEnv, GITHUB_SHA: 'abc123', GITHUB_REF_NAME: 'main' };
    assert.deepEqual(await gitLabels(repo, env), { revision: 'abc123', version: 'main' });
  });

  test('outside a repository: no labels, and git is not asked', async () => {
    const dir = await tempDir('cogts-nogit-');
    assert.equal(inGitWorktree(dir, noGitEnv), false);
    // a `git` first on PATH that leaves a mark and answers: asked, it would show
    const bin = await tempDir('cogts-fake-git-');
    const mark = join(bin, 'asked');
    await writeFile(join(bin, 'git'), `#!/bin/sh\ntouch '${mark}'\necho deadbeef\n`, { mode: 0o755 });
    // (git runs with the process's environment, so the PATH is changed there for this check)
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    try {
      assert.deepEqual(await gitLabels(dir, noGitEnv), {});
    } finally {
      process.env.PATH = path;
    }
    assert.equal(existsSync(mark), false, 'git was not run');
    assert.ok(inGitWorktree(dir, { ...noGitEnv, GIT_DIR: join(dir, 'elsewhere') }), 'GIT_DIR names one');
  });
});
