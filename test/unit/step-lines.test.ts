import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { ResolvedProgressMode } from '../../src/progress/mode.js';
import { createStepLines } from '../../src/progress/step-lines.js';

/** Step lines on a collected stream, with a clock the test moves. */
function harness(mode: ResolvedProgressMode, total: number) {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  let clock = 1_000;
  const lines = createStepLines({ stream, mode }, 'writing the source layer', total, {
    firstAfterMs: 2_000,
    everyMs: 10_000,
    now: () => clock,
  });
  return {
    lines,
    advance: (ms: number) => (clock += ms),
    text: () => text,
  };
}

const MiB = 1024 * 1024;

describe('createStepLines', () => {
  it('says nothing about a step that ends quickly', () => {
    const h = harness('plain', 10 * MiB);
    h.lines.update(5 * MiB);
    h.advance(1_999);
    h.lines.update(10 * MiB);
    h.lines.end();
    assert.equal(h.text(), '');
  });

  it('prints the bytes done once the step is slow, then at most every everyMs, then a closing line', () => {
    const h = harness('plain', 300 * MiB);
    h.advance(2_000);
    h.lines.update(20 * MiB);
    h.advance(5_000);
    h.lines.update(100 * MiB); // within 10 s of the last line: nothing
    h.advance(5_000);
    h.lines.update(150 * MiB);
    h.advance(3_000);
    h.lines.end();
    h.lines.end(); // once
    h.lines.update(300 * MiB); // after the end: nothing
    assert.equal(
      h.text(),
      [
        'cog: writing the source layer: 20.0 MiB / 300.0 MiB',
        'cog: writing the source layer: 150.0 MiB / 300.0 MiB',
        'cog: writing the source layer: done, 300.0 MiB in 15.0s',
        '',
      ].join('\n'),
    );
  });

  it('never shows more than the total (a file that grew while it was read)', () => {
    const h = harness('tty', 10 * MiB);
    h.advance(2_500);
    h.lines.update(12 * MiB);
    assert.equal(h.text(), 'cog: writing the source layer: 10.0 MiB / 10.0 MiB\n');
  });

  for (const mode of ['quiet', 'rawjson'] as const)
    it(`prints nothing in ${mode} mode`, () => {
      const h = harness(mode, 10 * MiB);
      h.advance(60_000);
      h.lines.update(5 * MiB);
      h.lines.end();
      assert.equal(h.text(), '');
    });
});
