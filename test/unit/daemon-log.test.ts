// A private buildkitd that does not come up: its error says why with the log's line that does, not
// the Go stack trace buildkitd prints after it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { daemonLogExcerpt, lockedRoot } from '../../src/buildkit/daemon-log.js';

const lockedLog = [
  'buildkitd: could not lock /state/cog-ts/buildkitd/buildkitd.lock, another instance running?',
  'main.main.func3',
  '\tgithub.com/moby/buildkit/cmd/buildkitd/main.go:392',
  'github.com/urfave/cli/v3.(*Command).run',
  '\tgithub.com/urfave/cli/v3@v3.9.0/command_run.go:365',
  'github.com/urfave/cli/v3.(*Command).Run',
  '\tgithub.com/urfave/cli/v3@v3.9.0/command_run.go:93',
  'main.main',
  '\tgithub.com/moby/buildkit/cmd/buildkitd/main.go:488',
  'runtime.main',
  '\truntime/proc.go:290',
  'runtime.goexit',
  '\truntime/asm_amd64.s:1771',
  '',
].join('\n');

test("a fatal error's line is shown, its stack trace is not", () => {
  assert.equal(
    daemonLogExcerpt(lockedLog),
    'buildkitd: could not lock /state/cog-ts/buildkitd/buildkitd.lock, another instance running?',
  );
  assert.equal(lockedRoot(lockedLog), '/state/cog-ts/buildkitd');
});

test('error lines are picked from among the info lines, the last of them when there are many', () => {
  const log = [
    'time="t" level=info msg="auto snapshotter: using overlayfs"',
    'time="t" level=error msg="failed to create worker: runc not found"',
    'time="t" level=info msg="running server on /run/x.sock"',
    ...Array.from({ length: 10 }, (_, i) => `time="t" level=fatal msg="fatal ${i}"`),
  ].join('\n');
  const excerpt = daemonLogExcerpt(log, 3).split('\n');
  assert.deepEqual(excerpt, [
    'time="t" level=fatal msg="fatal 7"',
    'time="t" level=fatal msg="fatal 8"',
    'time="t" level=fatal msg="fatal 9"',
  ]);
  const few = log.split('\n').slice(0, 4).join('\n');
  assert.equal(
    daemonLogExcerpt(few),
    'time="t" level=error msg="failed to create worker: runc not found"\ntime="t" level=fatal msg="fatal 0"',
  );
});

test('a log without an error line shows its last lines, without stack frames', () => {
  const log = ['one', 'two', 'three', 'main.main', '\tmain.go:1', ''].join('\n');
  assert.equal(daemonLogExcerpt(log, 2), 'two\nthree');
  assert.equal(daemonLogExcerpt(''), '');
  assert.equal(lockedRoot('one\ntwo'), undefined);
});
