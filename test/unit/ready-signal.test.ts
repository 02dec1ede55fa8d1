// How `cog run` learns that the model's setup finished: the run's step writes readyLine on its stdout,
// which the status stream carries; it is noticed (also in pieces) and left out of the progress view.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readyLine, watchingForReady } from '../../src/runtime/ready-signal.js';

const step = 'run the model: /predictions';
const log = (vertex: string, stream: number, text: string) => ({
  vertex,
  stream,
  msg: Buffer.from(text),
});

test("the run step's ready line on stdout says the model is READY, and is not shown", () => {
  let readyCalls = 0;
  const watch = watchingForReady(step, () => readyCalls++);
  const first = watch({
    vertexes: [
      { digest: 'sha256:run', name: step },
      { digest: 'sha256:other', name: 'load the inputs' },
    ],
    logs: [log('sha256:run', 2, 'Running setup()...\n')],
  });
  assert.equal(readyCalls, 0, 'setup output on stderr is not the ready line');
  assert.equal(first.logs?.length, 1, 'stderr is shown');
  const second = watch({ logs: [log('sha256:run', 1, readyLine), log('sha256:run', 2, 'predicting\n')] });
  assert.equal(readyCalls, 1);
  assert.deepEqual(
    second.logs?.map((l) => Buffer.from(l.msg ?? []).toString()),
    ['predicting\n'],
  );
  watch({ logs: [log('sha256:run', 1, readyLine)] });
  assert.equal(readyCalls, 1, 'once');
});

test('the ready line is found when it comes in pieces', () => {
  let ready = false;
  const watch = watchingForReady(step, () => (ready = true));
  watch({ vertexes: [{ digest: 'sha256:run', name: step }] });
  const half = Math.floor(readyLine.length / 2);
  watch({ logs: [log('sha256:run', 1, readyLine.slice(0, half))] });
  assert.equal(ready, false);
  watch({ logs: [log('sha256:run', 1, readyLine.slice(half))] });
  assert.equal(ready, true);
});

test('the ready line is found with more after it in the same piece', () => {
  let ready = false;
  const watch = watchingForReady(step, () => (ready = true));
  watch({ vertexes: [{ digest: 'sha256:run', name: step }] });
  watch({ logs: [log('sha256:run', 1, `${readyLine}and more`)] });
  assert.equal(ready, true);
});

test("another step's output, even the same line, is not the model's and is shown", () => {
  let ready = false;
  const watch = watchingForReady(step, () => (ready = true));
  const status = {
    vertexes: [{ digest: 'sha256:build', name: 'RUN echo' }],
    logs: [log('sha256:build', 1, readyLine)],
  };
  assert.equal(watch(status), status);
  assert.equal(ready, false);
});
