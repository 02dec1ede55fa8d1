// Which builds may be answered source-only (the last image's layers with a new source layer on top).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BuildArgs, PreparedBuild } from '../../src/cli/prepare-build.js';
import { sourceOnlyAllowed } from '../../src/cli/source-only.js';

const args = { timestamp: undefined, smokeTest: false, outputs: [] } as unknown as BuildArgs;
const prepared = (over: Partial<PreparedBuild>) =>
  ({ platforms: [{ os: 'linux', architecture: 'amd64' }], schemaFromImage: false, ...over }) as PreparedBuild;

test('a build whose schema is read from the image (an SDK below 0.17) is never answered source-only', () => {
  assert.equal(sourceOnlyAllowed(args, prepared({})), true);
  // its schema layer sits above the source layer and depends on the source: the swap would drop it
  assert.equal(sourceOnlyAllowed(args, prepared({ schemaFromImage: true })), false);
});
