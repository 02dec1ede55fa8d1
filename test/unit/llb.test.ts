// The LLB state API produces the ops Go's client/llb would: paths, image names, mount order and indexes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  FileActions,
  image,
  local,
  merge,
  normalizeImageRef,
  resolvePath,
  scratch,
} from '../../src/llb/index.js';

describe('LLB states', () => {
  test('image references are normalised like Docker does', () => {
    assert.equal(normalizeImageRef('python:3.11-slim'), 'docker.io/library/python:3.11-slim');
    assert.equal(
      normalizeImageRef('nvidia/cuda:12.8.1-cudnn9-devel-ubuntu24.04'),
      'docker.io/nvidia/cuda:12.8.1-cudnn9-devel-ubuntu24.04',
    );
    assert.equal(normalizeImageRef('ghcr.io/astral-sh/uv'), 'ghcr.io/astral-sh/uv:latest');
    assert.equal(normalizeImageRef('localhost:5000/x@sha256:ab'), 'localhost:5000/x@sha256:ab');
    assert.throws(() => normalizeImageRef('bad ref'), /invalid image reference/);
  });

  test('paths resolve against the working directory', () => {
    assert.equal(resolvePath('/src', 'a/../b'), '/src/b');
    assert.equal(resolvePath('/src', '/abs'), '/abs');
    assert.equal(resolvePath('/', 'dir/'), '/dir/');
  });

  test('env, cwd and user carry into run; image config seeds them', () => {
    const def = image('python:3.11-slim', {
      config: { Env: ['PATH=/usr/bin', 'LANG=C.UTF-8'], WorkingDir: '/w' },
    })
      .withEnv('PATH', '/opt/bin')
      .withCwd('sub')
      .run({ shell: 'true', env: { X: '1' } })
      .root()
      .marshal();
    const exec = def.ops.find((o) => o.kind === 'exec')?.op.exec;
    assert.deepEqual(exec?.meta?.env, ['PATH=/opt/bin', 'LANG=C.UTF-8', 'X=1']);
    assert.equal(exec?.meta?.cwd, '/w/sub');
    assert.deepEqual(exec?.meta?.args, ['/bin/sh', '-c', 'true']);
  });

  test('mounts are sorted by destination; writable binds get outputs, secrets come last', () => {
    const data = scratch().mkfile('/d', 'd');
    const run = image('python:3.11-slim').run({
      shell: 'true',
      mounts: [
        { type: 'secret', id: 'tok' },
        { type: 'cache', dest: '/root/.cache/pip', id: 'pip', sharing: 'locked' },
        { type: 'bind', dest: '/out', source: data },
        { type: 'bind', dest: '/in', source: data, readonly: true },
      ],
    });
    const exec = run
      .mount('/out')
      .marshal()
      .ops.find((o) => o.kind === 'exec')?.op.exec;
    const mounts = exec?.mounts ?? [];
    assert.deepEqual(
      mounts.map((m) => [m.dest, m.output, m.mountType ?? 0]),
      [
        ['/', 0, 0],
        ['/in', -1, 0],
        ['/out', 1, 0],
        ['/root/.cache/pip', -1, 3],
        ['/run/secrets/tok', undefined, 1],
      ],
    );
    assert.equal(mounts[1]?.input, mounts[2]?.input, 'the same state is one input');
    assert.deepEqual(mounts[4]?.secretOpt, { ID: 'tok', uid: 0, gid: 0, mode: 0o400, optional: true });
    assert.throws(() => run.mount('/in'), /not a writable bind mount/);
  });

  test('file action chains index earlier actions after the op inputs', () => {
    const a = scratch().mkfile('/a', 'a');
    const def = image('python:3.11-slim')
      .file(new FileActions('/').mkdir('/x').copy(a, '/a', '/x/a').rm('/x/a'))
      .marshal();
    const actions = def.ops.at(-2)?.op.file?.actions ?? [];
    assert.deepEqual(
      actions.map((x) => [x.input, x.secondaryInput, x.output]),
      [
        [0, -1, -1],
        [2, 1, -1],
        [3, -1, 0],
      ],
    );
  });

  test('merge skips scratch and needs two real inputs to make an op', () => {
    const one = scratch().mkfile('/1', '1');
    assert.equal(merge([scratch(), one]).output, one.output);
    const def = merge([one, scratch().mkfile('/2', '2')]).marshal();
    assert.deepEqual(def.ops.at(-2)?.op.merge?.inputs, [{ input: 0 }, { input: 1 }]);
  });

  test('local sources carry patterns as JSON and the marshal-unique id', () => {
    const def = local('context', { exclude: ['*.pyc'], sharedKeyHint: 'ctx' }).marshal({
      localUniqueId: 'u1',
    });
    assert.deepEqual(def.ops[0]?.op.source?.attrs, {
      'local.unique': 'u1',
      'local.excludepatterns': '["*.pyc"]',
      'local.sharedkeyhint': 'ctx',
    });
    assert.equal(def.ops[0]?.op.platform, undefined, 'only image sources carry a platform');
  });

  test('marshalling scratch is an error, not an empty build', () => {
    assert.throws(() => scratch().marshal(), /cannot marshal scratch/);
  });
});
