// Ctrl-C during a command: the first SIGINT aborts the work's signal and says what it does; the error
// afterwards says what was cancelled (or stopped), with exit status 130.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { InterruptedError, signalExitCode, withInterrupt } from '../../src/cli/interrupt.js';

async function interrupted(doing?: () => string) {
  const stderr = new PassThrough();
  let said = '';
  stderr.on('data', (chunk: Buffer) => (said += chunk.toString('utf8')));
  const work = (signal: AbortSignal) =>
    new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      setImmediate(() => process.emit('SIGINT', 'SIGINT'));
    });
  const err = await withInterrupt(stderr, work, doing).catch((e: unknown) => e);
  return { err, said };
}

test('the message names what the command cancelled, the build by default', async () => {
  const build = await interrupted();
  assert.ok(build.err instanceof InterruptedError);
  assert.equal(build.err.message, 'interrupted (SIGINT): the build was cancelled');
  assert.equal(build.err.exitCode, 130);
  assert.match(build.said, /^cog: SIGINT: cancelling the build \(press Ctrl-C again/);

  const inspection = await interrupted(() => 'cancelling the inspection of r.example/a/b');
  assert.ok(inspection.err instanceof InterruptedError);
  assert.equal(inspection.err.message, 'interrupted (SIGINT): the inspection of r.example/a/b was cancelled');

  const model = await interrupted(() => 'stopping the model');
  assert.ok(model.err instanceof InterruptedError);
  assert.equal(model.err.message, 'interrupted (SIGINT): the model was stopped');
});

test('SIGTERM ends with 143, SIGINT with 130: 128 + the signal number, as a shell reports it', () => {
  assert.equal(signalExitCode('SIGINT'), 130);
  assert.equal(signalExitCode('SIGTERM'), 143);
  assert.equal(new InterruptedError('SIGTERM', 'cancelling the push').exitCode, 143);
});

test('the work learns which signal interrupted it', async () => {
  const seen: (NodeJS.Signals | undefined)[] = [];
  const err = await withInterrupt(new PassThrough(), (signal, interruptedBy) => {
    seen.push(interruptedBy());
    return new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => {
        seen.push(interruptedBy());
        reject(new Error('aborted'));
      });
      setImmediate(() => process.emit('SIGTERM', 'SIGTERM'));
    });
  }).catch((e: unknown) => e);
  assert.deepEqual(seen, [undefined, 'SIGTERM']);
  assert.ok(err instanceof InterruptedError);
  assert.equal(err.exitCode, 143);
});
