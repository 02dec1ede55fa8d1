// Progress renderers for BuildKit's status stream: mode choice, the model, and each mode's output.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { CogError } from '../../src/errors.js';
import type {
  google_protobuf_Timestamp,
  moby_buildkit_v1_StatusResponse,
  moby_buildkit_v1_Vertex,
} from '../../src/gen/types.js';
import {
  createProgressRenderer,
  ProgressModel,
  renderTtyFrame,
  resolveProgressMode,
  type ProgressOutput,
} from '../../src/progress/index.js';

/** A daemon timestamp `ms` milliseconds after a fixed epoch second (exact, no float noise). */
const base = 1_700_000_000;
function at(ms: number): google_protobuf_Timestamp {
  return { seconds: base + Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}
const localBase = base * 1000;

const digests = {
  image: 'sha256:1111',
  run: 'sha256:2222',
  fail: 'sha256:3333',
  push: 'sha256:4444',
  never: 'sha256:5555',
};
const names: Record<keyof typeof digests, string> = {
  image: '[1/3] FROM python:3.11-slim',
  run: '[2/3] RUN pip install six',
  fail: '[3/3] RUN false',
  push: 'exporting to image',
  never: 'never runs',
};

function vertex(
  key: keyof typeof digests,
  fields: Omit<moby_buildkit_v1_Vertex, 'digest' | 'name'> = {},
): moby_buildkit_v1_Vertex {
  return { digest: digests[key], name: names[key], ...fields };
}

function log(key: keyof typeof digests, ms: number, text: string | Uint8Array, stream = 1) {
  const msg = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  return { logs: [{ vertex: digests[key], timestamp: at(ms), stream, msg }] };
}

const MiB = 1024 * 1024;
const pushId = 'pushing layer sha256:abc';

/** A build: a cached step, a step with logs (split and partial lines), a failing step, a push. */
const build: moby_buildkit_v1_StatusResponse[] = [
  { vertexes: (['image', 'run', 'fail', 'push', 'never'] as const).map((key) => vertex(key)) },
  { vertexes: [vertex('image', { cached: true, started: at(0), completed: at(10) })] },
  { vertexes: [vertex('run', { started: at(100) })] },
  log('run', 350, 'hello\nwor'),
  log('run', 600, 'ld\n'),
  log('run', 700, 'warn', 2),
  { vertexes: [vertex('run', { started: at(100), completed: at(1300) })] },
  { vertexes: [vertex('fail', { started: at(1400) })] },
  log('fail', 1500, 'boom\n'),
  { vertexes: [vertex('fail', { started: at(1400), completed: at(1600), error: 'exit code: 1' })] },
  { vertexes: [vertex('push', { started: at(2000) })] },
  {
    statuses: [
      {
        ID: pushId,
        vertex: digests.push,
        current: 10 * MiB,
        total: 20 * MiB,
        started: at(2000),
        timestamp: at(2500),
      },
    ],
  },
  {
    statuses: [
      {
        ID: pushId,
        vertex: digests.push,
        current: 10.5 * MiB,
        total: 20 * MiB,
        started: at(2000),
        timestamp: at(2600),
      },
    ],
  },
  {
    statuses: [
      {
        ID: pushId,
        vertex: digests.push,
        current: 20 * MiB,
        total: 20 * MiB,
        started: at(2000),
        timestamp: at(3000),
        completed: at(3000),
      },
    ],
  },
  { vertexes: [vertex('push', { started: at(2000), completed: at(3100) })] },
];

/** A stream that keeps what is written to it. */
function sink(extra: { columns?: number; rows?: number; isTTY?: boolean } = {}) {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const out: ProgressOutput = Object.assign(stream, extra);
  return { out, text: () => chunks.join(''), writes: () => chunks.length };
}

/** A local clock that moves 50 ms per reading, starting when the first step started. */
function steppingClock(start = localBase) {
  let now = start;
  return () => (now += 50);
}

async function render(
  mode: 'plain' | 'rawjson' | 'quiet' | 'tty' | 'auto',
  statuses: readonly moby_buildkit_v1_StatusResponse[],
  options: { env?: NodeJS.ProcessEnv; columns?: number; isTTY?: boolean } = {},
) {
  const { out, text, writes } = sink({ columns: options.columns ?? 100, isTTY: options.isTTY ?? false });
  const renderer = createProgressRenderer(mode, out, {
    env: options.env ?? {},
    now: steppingClock(),
    refreshMs: 60_000,
  });
  for (const status of statuses) renderer.update(status);
  await renderer.close();
  return { text: text(), writes: writes() };
}

describe('resolveProgressMode', () => {
  test('the flag beats BUILDKIT_PROGRESS, which beats auto', () => {
    assert.equal(resolveProgressMode('plain', { BUILDKIT_PROGRESS: 'rawjson' }, true), 'plain');
    assert.equal(resolveProgressMode(undefined, { BUILDKIT_PROGRESS: 'rawjson' }, true), 'rawjson');
    assert.equal(resolveProgressMode(undefined, { BUILDKIT_PROGRESS: 'quiet' }, false), 'quiet');
    assert.equal(resolveProgressMode('tty', {}, false), 'tty');
  });

  test('auto (explicit, or nothing set) is tty on a terminal and plain otherwise', () => {
    assert.equal(resolveProgressMode(undefined, {}, true), 'tty');
    assert.equal(resolveProgressMode(undefined, {}, false), 'plain');
    assert.equal(resolveProgressMode('auto', { BUILDKIT_PROGRESS: 'quiet' }, true), 'tty');
    assert.equal(resolveProgressMode(undefined, { BUILDKIT_PROGRESS: 'auto' }, false), 'plain');
    assert.equal(resolveProgressMode(undefined, { BUILDKIT_PROGRESS: '' }, false), 'plain');
  });

  test('an invalid --progress fails naming the flag and the valid modes', () => {
    assert.throws(
      () => resolveProgressMode('fancy', { BUILDKIT_PROGRESS: 'plain' }, true),
      (error: unknown) => {
        assert.ok(error instanceof CogError);
        assert.match(error.message, /--progress "fancy"/);
        assert.doesNotMatch(error.message, /BUILDKIT_PROGRESS/);
        assert.equal(error.hint, 'use one of: auto, tty, plain, rawjson, quiet');
        return true;
      },
    );
  });

  test('an invalid BUILDKIT_PROGRESS fails naming the variable, unless the flag decides', () => {
    assert.throws(
      () => resolveProgressMode(undefined, { BUILDKIT_PROGRESS: 'verbose' }, false),
      (error: unknown) => {
        assert.ok(error instanceof CogError);
        assert.match(error.message, /BUILDKIT_PROGRESS="verbose"/);
        assert.match(error.hint ?? '', /auto, tty, plain, rawjson, quiet/);
        return true;
      },
    );
    assert.equal(resolveProgressMode('rawjson', { BUILDKIT_PROGRESS: 'verbose' }, false), 'rawjson');
  });
});

describe('ProgressModel', () => {
  test('numbers steps as they start and counts the ones that never do', () => {
    const model = new ProgressModel();
    for (const status of build) model.apply(status, localBase + 5000);
    assert.deepEqual(
      model.vertexes.map((v) => `${v.index} ${v.name}`),
      [
        '1 [1/3] FROM python:3.11-slim',
        '2 [2/3] RUN pip install six',
        '3 [3/3] RUN false',
        '4 exporting to image',
      ],
    );
    assert.deepEqual(model.counts(), { total: 5, completed: 4 });
  });

  test('ignores a stale copy of a started step and logs for unknown steps', () => {
    const model = new ProgressModel();
    model.apply({ vertexes: [vertex('run', { started: at(100) })] }, localBase + 100);
    const events = model.apply(
      { vertexes: [vertex('run')], logs: [{ vertex: 'sha256:unknown', msg: new Uint8Array([104, 10]) }] },
      localBase + 200,
    );
    assert.deepEqual(events, []);
    assert.equal(model.vertexes[0]?.startedMs, base * 1000 + 100);
  });

  test('keeps a UTF-8 character split across chunks whole, and stamps the line with its first chunk', () => {
    const model = new ProgressModel();
    model.apply({ vertexes: [vertex('run', { started: at(0) })] }, localBase);
    const bytes = new TextEncoder().encode('café\n');
    assert.deepEqual(model.apply(log('run', 100, bytes.slice(0, 4)), localBase + 100), []);
    const events = model.apply(log('run', 200, bytes.slice(4)), localBase + 200);
    assert.deepEqual(
      events.map((e) => (e.kind === 'log' ? e.line : e.kind)),
      [{ offsetMs: 100, text: 'café', stream: 1 }],
    );
  });

  test('measures running time on the daemon clock, whatever the local clock says', () => {
    const model = new ProgressModel();
    // the local clock is 1 hour ahead of the daemon's; the message arrives 20 ms after it was sent
    const skew = 3_600_000;
    model.apply({ vertexes: [vertex('run', { started: at(1000) })] }, localBase + 1020 + skew);
    const running = model.vertexes[0];
    assert.ok(running);
    assert.equal(model.elapsedMs(running, localBase + 3020 + skew), 2000);
  });
});

describe('plain progress', () => {
  test('prints numbered blocks with log offsets, outcomes, throttled statuses and a failure summary', async () => {
    const { text } = await render('plain', build);
    assert.equal(
      text,
      [
        '#1 [1/3] FROM python:3.11-slim',
        '#1 CACHED',
        '',
        '#2 [2/3] RUN pip install six',
        '#2 0.250 hello',
        '#2 0.250 world',
        '#2 0.600 warn',
        '#2 DONE 1.2s',
        '',
        '#3 [3/3] RUN false',
        '#3 0.100 boom',
        '#3 ERROR: exit code: 1',
        '',
        '#4 exporting to image',
        '#4 pushing layer sha256:abc 10.00MB / 20.00MB 0.5s',
        '#4 pushing layer sha256:abc 20.00MB / 20.00MB 1.0s done',
        '#4 DONE 1.1s',
        '------',
        ' > [3/3] RUN false:',
        '0.100 boom',
        '------',
        '',
      ].join('\n'),
    );
  });

  test('closes an interrupted block with `#N ...` and reopens it with its header', async () => {
    const { text } = await render('plain', [
      { vertexes: [vertex('run', { started: at(0) }), vertex('fail', { started: at(0) })] },
      log('run', 100, 'a\n'),
      log('fail', 200, 'b\n'),
      log('run', 300, 'c\n'),
      { vertexes: [vertex('run', { started: at(0), completed: at(400) })] },
      { vertexes: [vertex('fail', { started: at(0), completed: at(500), error: 'context canceled' })] },
    ]);
    assert.equal(
      text,
      [
        '#1 [2/3] RUN pip install six',
        '#1 0.100 a',
        '#1 ...',
        '',
        '#2 [3/3] RUN false',
        '#2 0.200 b',
        '#2 ...',
        '',
        '#1 [2/3] RUN pip install six',
        '#1 0.300 c',
        '#1 DONE 0.4s',
        '',
        '#2 [3/3] RUN false',
        '#2 CANCELED',
        '',
      ].join('\n'),
    );
  });

  test('auto writes plain when the output is not a terminal', async () => {
    const { text } = await render('auto', build.slice(0, 2));
    assert.equal(text, '#1 [1/3] FROM python:3.11-slim\n#1 CACHED\n');
  });
});

describe('rawjson progress', () => {
  test('writes one parseable JSON object per status message with strings for digests, bytes and times', async () => {
    const { text } = await render('rawjson', build);
    const lines = text.split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, build.length);
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown[]>);
    for (const message of parsed) {
      assert.deepEqual(Object.keys(message).sort(), ['logs', 'statuses', 'vertexes', 'warnings']);
    }
    assert.deepEqual(parsed[1]?.vertexes, [
      {
        digest: 'sha256:1111',
        inputs: [],
        name: '[1/3] FROM python:3.11-slim',
        cached: true,
        started: '2023-11-14T22:13:20Z',
        completed: '2023-11-14T22:13:20.01Z',
      },
    ]);
    const logEntry = parsed[3]?.logs?.[0] as {
      vertex: string;
      stream: number;
      data: string;
      timestamp: string;
    };
    assert.deepEqual(logEntry, {
      vertex: 'sha256:2222',
      stream: 1,
      data: Buffer.from('hello\nwor').toString('base64'),
      timestamp: '2023-11-14T22:13:20.35Z',
    });
    assert.deepEqual(parsed[11]?.statuses?.[0], {
      id: pushId,
      vertex: 'sha256:4444',
      current: 10 * MiB,
      total: 20 * MiB,
      timestamp: '2023-11-14T22:13:22.5Z',
      started: '2023-11-14T22:13:22Z',
    });
  });
});

describe('quiet progress', () => {
  test('writes nothing at all', async () => {
    const { text, writes } = await render('quiet', build);
    assert.equal(text, '');
    assert.equal(writes, 0);
  });
});

describe('tty progress', () => {
  test('redraws in place and ends with the full list, FINISHED only when all steps are done', async () => {
    // the first message draws a one-line frame (no step started yet); later ones fall within
    // refreshMs, so the next draw is the final one, which goes back up over that line
    const rendered = await render('tty', build, { env: { NO_COLOR: '1' } });
    const text = rendered.text.replace(/Building [\d.]+s/g, 'Building Ts');
    for (const key of ['image', 'run', 'fail', 'push'] as const) assert.ok(text.includes(names[key]), key);
    assert.ok(text.startsWith('\x1b[?25l\r[+] Building Ts (0/5)\x1b[K\n\x1b[J\x1b[?25h'), 'first frame');
    assert.ok(text.includes('\x1b[?25l\x1b[1A\r[+] Building Ts'), 'moves the cursor up over the first frame');
    assert.ok(!text.includes('\x1b[3'), 'NO_COLOR leaves colors out');
    const finalFrame = text.slice(text.lastIndexOf('[+] Building'));
    assert.ok(finalFrame.startsWith('[+] Building Ts (4/5)\x1b[K\n'), 'one step never ran: not FINISHED');
    assert.match(finalFrame, / => CACHED \[1\/3\] FROM python:3\.11-slim +0\.0s/);
    assert.match(finalFrame, / => \[2\/3\] RUN pip install six +1\.2s/);
    assert.match(finalFrame, / => ERROR \[3\/3\] RUN false +0\.2s/);
    assert.match(finalFrame, / => => pushing layer sha256:abc 20\.00MB \/ 20\.00MB +1\.0s/);
    assert.doesNotMatch(finalFrame, /=> => # /, 'no logs in the final list');
    assert.ok(
      finalFrame.endsWith('------\n > [3/3] RUN false:\n0.100 boom\n------\n'),
      'ends with the failure',
    );
  });

  test('says FINISHED when every step completed, and colors finished steps unless NO_COLOR', async () => {
    const { text } = await render('tty', build.slice(1, 7));
    assert.match(text, /\[\+\] Building [\d.]+s \(2\/2\) FINISHED/);
    assert.ok(text.includes('\x1b[34m => CACHED [1/3] FROM python:3.11-slim'));
    // upstream's COG_NO_COLOR (and --no-color, which sets NO_COLOR) turn colours off too
    const plain = await render('tty', build.slice(1, 7), { env: { COG_NO_COLOR: '1' } });
    assert.ok(plain.text.includes(' => CACHED [1/3] FROM python:3.11-slim'));
    assert.ok(!plain.text.includes('\x1b[3'), 'COG_NO_COLOR leaves colors out');
  });

  test('shows the last BUILDKIT_TTY_LOG_LINES lines of a running step under it', () => {
    const model = new ProgressModel();
    model.apply({ vertexes: [vertex('run', { started: at(0) })] }, localBase);
    for (let i = 1; i <= 5; i += 1) model.apply(log('run', i * 100, `line ${i}\n`), localBase + i * 100);
    model.apply(log('run', 600, 'progress 10%\rprogress 50%'), localBase + 600);
    const frame = renderTtyFrame(model, {
      nowMs: localBase + 2000,
      startMs: localBase,
      width: 60,
      height: undefined,
      logLines: 3,
      color: false,
      final: false,
    });
    assert.deepEqual(frame, [
      '[+] Building 2.0s (0/1)',
      ` => [2/3] RUN pip install six${' '.repeat(26)}2.0s`,
      ' => => # line 4',
      ' => => # line 5',
      ' => => # progress 50%',
    ]);
  });

  test('a terminal that reports 0 columns gets frames 80 wide, not cut to nothing', async () => {
    const { out, text } = sink({ columns: 0 });
    const renderer = createProgressRenderer('tty', out, {
      env: { NO_COLOR: '1' },
      now: steppingClock(),
      refreshMs: 0,
    });
    renderer.update({ vertexes: [vertex('run', { started: at(0) })] });
    await renderer.close();
    assert.match(text(), /\[\+\] Building [\d.]+s \(0\/1\)/);
    assert.match(text(), / => \[2\/3\] RUN pip install six {2,}[\d.]+s/);
  });

  test('BUILDKIT_TTY_LOG_LINES sets how many log lines a running step shows', async () => {
    const { out, text } = sink({ columns: 80 });
    const renderer = createProgressRenderer('tty', out, {
      env: { BUILDKIT_TTY_LOG_LINES: '1', NO_COLOR: '1' },
      now: steppingClock(),
      refreshMs: 0, // draw on every message
    });
    renderer.update({ vertexes: [vertex('run', { started: at(0) })] });
    for (const line of ['a', 'b', 'c']) renderer.update(log('run', 100, `${line}\n`));
    const lastLiveFrame = text().slice(text().lastIndexOf('[+] Building'));
    await renderer.close();
    assert.ok(lastLiveFrame.includes(' => => # c'));
    assert.ok(!lastLiveFrame.includes(' => => # b'));
  });

  test('keeps lines within the terminal width and a frame within its height', () => {
    const model = new ProgressModel();
    const long = 'x'.repeat(200);
    for (let i = 0; i < 10; i += 1) {
      const digest = `sha256:${i}`;
      model.apply(
        {
          vertexes: [
            { digest, name: `${i} ${long}`, started: at(i), ...(i < 8 ? { completed: at(i + 1) } : {}) },
          ],
        },
        localBase,
      );
    }
    const frame = renderTtyFrame(model, {
      nowMs: localBase,
      startMs: localBase,
      width: 40,
      height: 6,
      logLines: 6,
      color: false,
      final: false,
    });
    assert.equal(frame.length, 5);
    for (const line of frame) assert.ok(line.length <= 39, line);
    assert.deepEqual(
      frame.slice(1).map((line) => line.slice(4, 6)),
      ['6 ', '7 ', '8 ', '9 '],
      'finished steps make room for running ones',
    );
  });
});
