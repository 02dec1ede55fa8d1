// Uploads side by side: at most `limit` at once, and the first failure stops the rest before the call
// settles (source-rebuild removes the layer's directory right after).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runLimited } from '../../src/registry/run-limited.js';

test('the first failure aborts the task still running, and the call waits for it to stop', async () => {
  const controller = new AbortController();
  const events: string[] = [];
  const slow = () =>
    new Promise<void>((resolve, reject) => {
      const finish = setTimeout(resolve, 5_000);
      controller.signal.addEventListener('abort', () => {
        clearTimeout(finish);
        setTimeout(() => {
          events.push('slow stopped');
          reject(new Error('aborted'));
        }, 20);
      });
    });
  const failing = async () => {
    await new Promise((r) => setTimeout(r, 5));
    events.push('failed');
    throw new Error('config upload refused');
  };
  await assert.rejects(runLimited([slow, failing], 2, controller), /config upload refused/);
  assert.deepEqual(events, ['failed', 'slow stopped']);
  assert.equal(controller.signal.aborted, true);
});

test('no more than `limit` tasks run at once, and every one runs', async () => {
  let running = 0;
  let most = 0;
  let done = 0;
  const task = async () => {
    running++;
    most = Math.max(most, running);
    await new Promise((r) => setTimeout(r, 2));
    running--;
    done++;
  };
  await runLimited(
    Array.from({ length: 9 }, () => task),
    3,
    new AbortController(),
  );
  assert.equal(most, 3);
  assert.equal(done, 9);
});

test('tasks that each listen on the shared signal more than once print no leak warning', async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.name);
  process.on('warning', onWarning);
  try {
    const controller = new AbortController();
    // five uploads at once, each with a request and a token request: two listeners each (undici's, the client's)
    const task = async () => {
      const listeners = Array.from({ length: 4 }, () => () => undefined);
      for (const listener of listeners) controller.signal.addEventListener('abort', listener);
      await new Promise((resolve) => setTimeout(resolve, 10));
      for (const listener of listeners) controller.signal.removeEventListener('abort', listener);
    };
    await runLimited(
      Array.from({ length: 10 }, () => task),
      5,
      controller,
    );
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on a later tick
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings, []);
});
