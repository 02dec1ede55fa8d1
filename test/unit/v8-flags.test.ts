// v8-flags.ts: hooks run once, right before the first flag change, and the state is shared by every
// copy of the module (the entry bundle and the CLI bundle each carry one).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type * as V8Flags from '../../src/v8-flags.js';
import { beforeV8FlagChange, setV8Flag, v8FlagsChanged } from '../../src/v8-flags.js';

test('hooks run once before the first change; a second copy of the module sees the same state', async () => {
  const copy = (await import(`../../src/v8-flags.js?copy=${Date.now()}`)) as typeof V8Flags;
  const seen: string[] = [];
  assert.equal(v8FlagsChanged(), false);
  beforeV8FlagChange(() => seen.push(`first, changed=${String(v8FlagsChanged())}`));
  copy.beforeV8FlagChange(() => seen.push('from the copy'));
  copy.setV8Flag('--liftoff-only'); // concerns WebAssembly only; harmless in a test process
  assert.deepEqual(seen, ['first, changed=false', 'from the copy']);
  assert.equal(v8FlagsChanged(), true);
  beforeV8FlagChange(() => seen.push('too late'));
  setV8Flag('--liftoff-only');
  assert.equal(seen.length, 2, 'hooks ran once; none are taken after a change');
});
