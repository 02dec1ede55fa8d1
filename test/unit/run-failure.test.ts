// A model that does not become ready: the error carries the tail of the server's own output (the probe
// keeps its last lines in the report), because the default (quiet) progress view shows none of it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkSmoke } from '../../src/build/build-model.js';
import { CogError } from '../../src/errors.js';
import { runFailure } from '../../src/runtime/run-model.js';
import {
  pointToShownOutput,
  readableServerLine,
  serverOutputTail,
  shownOutputHint,
  wholeOutputHint,
} from '../../src/runtime/server-output.js';
import type { SmokeReport } from '../../src/runtime/smoke.js';

const traceback = [
  '',
  'Traceback (most recent call last):',
  '  File "/src/predict.py", line 1, in <module>',
  'ModuleNotFoundError: No module named nosuchmodule',
  '',
];

test('the tail is indented under a heading; blank lines around it are dropped; none gives nothing', () => {
  assert.equal(
    serverOutputTail({ health: null, output_tail: traceback }),
    "\nthe model server's last 3 lines of output:\n" +
      '  Traceback (most recent call last):\n' +
      '    File "/src/predict.py", line 1, in <module>\n' +
      '  ModuleNotFoundError: No module named nosuchmodule',
  );
  assert.equal(
    serverOutputTail({ health: null, output_tail: ['one'] }),
    "\nthe model server's last line of output:\n  one",
  );
  assert.equal(serverOutputTail({ health: null, output_tail: ['', ' '] }), '');
  assert.equal(serverOutputTail({ health: { status: 'READY' } }), '');
});

test('a log message of several lines (an exception text) is indented line by line', () => {
  const entry = JSON.stringify({
    level: 'ERROR',
    fields: { message: 'setup failed: bad\nmultiline\nmessage' },
  });
  assert.equal(
    serverOutputTail({ health: null, output_tail: [entry] }),
    "\nthe model server's last 3 lines of output:\n  ERROR setup failed: bad\n  multiline\n  message",
  );
});

test("coglet's JSON log lines read as LEVEL message key=value; the model's own output as its text", () => {
  assert.equal(
    readableServerLine(
      '{"timestamp":"2026-11-24T09:43:40Z","level":"ERROR","fields":{"message":"Worker initialization failed","error":"ValueError: no weights","elapsed_ms":134},"target":"coglet"}',
    ),
    'ERROR Worker initialization failed error=ValueError: no weights elapsed_ms=134',
  );
  assert.equal(
    readableServerLine('{"level":"INFO","fields":{"message":"loading weights...","source":"Stdout"}}'),
    'loading weights...',
  );
  for (const line of ['plain text', '{"not":"a log entry"}', '{broken', '']) {
    assert.equal(readableServerLine(line), line);
  }
});

test('cog run: a server that exits before READY shows its last output, and how to see all of it', () => {
  const report: SmokeReport = {
    health: null,
    error: 'the server exited with code 1',
    output_tail: traceback,
  };
  const err = runFailure(report);
  assert.ok(err instanceof CogError);
  assert.match(err.message, /^the model did not become ready \(the server exited with code 1\)\n/);
  assert.match(err.message, /^ {2}ModuleNotFoundError: No module named nosuchmodule$/m);
  assert.match(err.hint ?? '', /--progress plain/);
  // setup failed: its logs, then the output tail; logs the tail holds already are not repeated
  const setup = runFailure({
    health: { status: 'SETUP_FAILED', setup: { logs: 'loading weights...' } },
    output_tail: ['ValueError: cannot load weights'],
  });
  assert.equal(
    setup?.message,
    "Model setup failed\nsetup logs:\n  loading weights...\nthe model server's last line of output:\n  ValueError: cannot load weights",
  );
  assert.match(setup?.hint ?? '', /--progress plain/);
  const once = runFailure({
    health: { status: 'SETUP_FAILED', setup: { logs: 'ValueError: cannot load weights' } },
    output_tail: [
      '{"level":"ERROR","fields":{"message":"failed","error":"ValueError: cannot load weights"}}',
    ],
  });
  assert.equal(
    once?.message,
    "Model setup failed\nthe model server's last line of output:\n  ERROR failed error=ValueError: cannot load weights",
  );
  // a traceback (several lines) the tail holds is not repeated either, nor one with coglet's JSON lines
  // around it; one whose lines the tail lacks is shown
  const tb = traceback.slice(1, 4);
  const expectedTail =
    "\nthe model server's last 3 lines of output:\n" +
    '  Traceback (most recent call last):\n' +
    '    File "/src/predict.py", line 1, in <module>\n' +
    '  ModuleNotFoundError: No module named nosuchmodule';
  for (const logs of [tb.join('\n'), `${tb.join('\r\n')}\r\n`, ['', ...tb, ''].join('\n')]) {
    assert.equal(
      runFailure({ health: { status: 'SETUP_FAILED', setup: { logs } }, output_tail: tb })?.message,
      `Model setup failed${expectedTail}`,
      JSON.stringify(logs),
    );
  }
  const logged = runFailure({
    health: { status: 'SETUP_FAILED', setup: { logs: tb.join('\n') } },
    output_tail: [
      '{"level":"INFO","fields":{"message":"starting setup"}}',
      ...tb.map((line) => JSON.stringify({ level: 'INFO', fields: { message: line, source: 'Stderr' } })),
    ],
  });
  assert.equal(logged?.message.split('Traceback').length, 2, logged?.message);
  assert.doesNotMatch(logged?.message ?? '', /setup logs:/);
  const partly = runFailure({
    health: { status: 'SETUP_FAILED', setup: { logs: `loading weights...\n${tb.join('\n')}` } },
    output_tail: tb.slice(1),
  });
  assert.equal(
    partly?.message,
    'Model setup failed\nsetup logs:\n  loading weights...\n' +
      tb.map((l) => `  ${l}`).join('\n') +
      "\nthe model server's last 2 lines of output:\n" +
      tb
        .slice(1)
        .map((l) => `  ${l}`)
        .join('\n'),
  );
  // no output kept (a report of an older probe): the logs alone
  assert.equal(
    runFailure({ health: { status: 'SETUP_FAILED', setup: { logs: 'boom' } } })?.message,
    'Model setup failed\nsetup logs:\n  boom',
  );
  // ready and answered: no error at all
  assert.equal(runFailure({ health: { status: 'READY' }, prediction: { status: 'succeeded' } }), undefined);
  // the probe's time limit is --setup-timeout: the error names the flag and its value
  assert.equal(
    runFailure({ health: { status: 'STARTING' }, error: 'no READY within the timeout' }, 2)?.message,
    'the model did not become ready (not READY within --setup-timeout 2 s; raise it if setup takes longer)',
  );
});

test('cog build --smoke-test: the same tail in its error', () => {
  assert.throws(
    () => checkSmoke({ health: { status: 'DEFUNCT' }, output_tail: ['RuntimeError: boom'] }, false),
    (err: unknown) =>
      err instanceof CogError &&
      /^smoke test: the model server did not become READY \(status DEFUNCT\)\n/.test(err.message) &&
      /^ {2}RuntimeError: boom$/m.test(err.message) &&
      /--progress plain/.test(err.hint ?? ''),
  );
  // a prediction that failed: what the server printed while it ran ends the message
  assert.throws(
    () =>
      checkSmoke(
        {
          health: { status: 'READY' },
          prediction: { status: 'failed', error: 'ValueError' },
          output_tail: ['INFO Starting prediction', 'checking n=3'],
        } as SmokeReport,
        true,
      ),
    (err: unknown) =>
      err instanceof CogError &&
      err.message ===
        "smoke test: the prediction did not succeed (failed)\nthe model server's last 2 lines of output:\n  INFO Starting prediction\n  checking n=3",
  );
});

test('with the whole log printed (--progress plain), the hint points to it instead of asking to run again', () => {
  const failure = runFailure({ health: { status: 'SETUP_FAILED' } } as SmokeReport);
  assert.ok(failure instanceof CogError);
  assert.equal(failure.hint, wholeOutputHint);
  assert.equal(pointToShownOutput(failure, false), failure, 'quiet/tty: unchanged');
  const shown = pointToShownOutput(failure, true);
  assert.ok(shown instanceof CogError);
  assert.equal(shown.message, failure.message);
  assert.equal(shown.hint, shownOutputHint);
  assert.equal(shown.exitCode, failure.exitCode);
  const other = new CogError('x', { hint: 'something else' });
  assert.equal(pointToShownOutput(other, true), other, 'other hints are left alone');
});
