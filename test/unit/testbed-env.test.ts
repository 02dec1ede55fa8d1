import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseExports } from '../support/testbed.js';

test('parseExports reads the export lines of `scripts/testbed env`', () => {
  const vars = parseExports('export A=1\nnoise\nexport PATH=/x/bin:$PATH\n  export B_2=a=b\n');
  assert.deepEqual(
    [...vars],
    [
      ['A', '1'],
      ['PATH', '/x/bin:$PATH'],
      ['B_2', 'a=b'],
    ],
  );
});
