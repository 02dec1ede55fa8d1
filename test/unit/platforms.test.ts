// --platform: one platform or several (a multi-platform image), and the gateway result that makes the
// exporters write one image index of them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gatewayResultFor, platformsNotRun } from '../../src/build/build-model.js';
import { parsePlatform, parsePlatforms } from '../../src/cli/build-flags.js';
import { platformsOfWorkers } from '../../src/buildkit/client.js';
import { CogError } from '../../src/errors.js';

const amd64 = { os: 'linux', architecture: 'amd64' } as const;
const arm64 = { os: 'linux', architecture: 'arm64' } as const;

test('--platform takes one platform or a comma-separated list, in order, repeats once', () => {
  assert.deepEqual(parsePlatforms(undefined), [amd64]);
  assert.deepEqual(parsePlatforms('linux/arm64'), [arm64]);
  assert.deepEqual(parsePlatforms('linux/arm64,linux/amd64'), [arm64, amd64]);
  assert.deepEqual(parsePlatforms('linux/amd64, linux/arm64,linux/amd64'), [amd64, arm64]);
  assert.throws(
    () => parsePlatforms('linux/riscv64'),
    (err: unknown) => {
      assert.ok(err instanceof CogError);
      assert.match(err.message, /--platform linux\/riscv64: linux\/riscv64 is not supported/);
      assert.match(err.hint ?? '', /linux\/amd64,linux\/arm64/);
      return true;
    },
  );
  assert.throws(() => parsePlatforms('linux/amd64,'), /an empty platform/);
  // read as buildx reads it: a bare architecture is Linux's, other names of one are its Go name
  assert.deepEqual(parsePlatforms('arm64,AMD64'), [arm64, amd64]);
  assert.deepEqual(parsePlatforms('linux/aarch64,linux/x86_64'), [arm64, amd64]);
  assert.deepEqual(parsePlatforms('linux/arm64/v8'), [arm64]);
  assert.throws(() => parsePlatforms('linux/arm/v7'), /linux\/arm\/v7 is not supported/);
  assert.throws(() => parsePlatforms('windows/amd64'), /windows\/amd64 is not supported/);
  assert.throws(() => parsePlatforms('linux'), /linux is not supported/);
  // where a command builds one platform, a list is refused naming the command
  assert.deepEqual(parsePlatform('linux/arm64'), arm64);
  assert.throws(
    () => parsePlatform('linux/amd64,linux/arm64', 'a model bundle push'),
    /--platform linux\/amd64,linux\/arm64: a model bundle push builds for one platform/,
  );
});

test('one image returns one ref; several return a ref and a config per platform id, and the platforms', () => {
  const config = (architecture: string) => ({
    architecture,
    os: 'linux',
    config: { Labels: { a: architecture } },
  });
  const single = gatewayResultFor([{ platform: amd64, ref: 'r1', config: config('amd64') }]);
  assert.equal(single.ref, 'r1');
  assert.equal(single.refs, undefined);
  assert.deepEqual(JSON.parse(String(single.metadata?.['containerimage.config'])), config('amd64'));

  const multi = gatewayResultFor([
    { platform: amd64, ref: 'r1', config: config('amd64') },
    { platform: arm64, ref: 'r2', config: config('arm64') },
  ]);
  assert.equal(multi.ref, undefined);
  assert.deepEqual(multi.refs, { 'linux/amd64': 'r1', 'linux/arm64': 'r2' });
  assert.deepEqual(JSON.parse(String(multi.metadata?.['refs.platforms'])), {
    Platforms: [
      { ID: 'linux/amd64', Platform: { os: 'linux', architecture: 'amd64' } },
      { ID: 'linux/arm64', Platform: { os: 'linux', architecture: 'arm64' } },
    ],
  });
  assert.deepEqual(
    JSON.parse(String(multi.metadata?.['containerimage.config/linux/arm64'])),
    config('arm64'),
  );
  assert.equal(multi.metadata?.['containerimage.config'], undefined);
});

test('a platform the daemon’s workers do not run is named before anything builds', () => {
  const workers = ['linux/amd64', 'linux/amd64/v2', 'linux/386'];
  assert.deepEqual(platformsNotRun([amd64, arm64], workers), [arm64]);
  assert.deepEqual(platformsNotRun([amd64], workers), []);
  assert.deepEqual(platformsNotRun([arm64], [...workers, 'linux/arm64']), []);
  // a variant counts as its architecture
  assert.deepEqual(platformsNotRun([arm64], ['linux/arm64/v8']), []);
  // the daemon said nothing: nothing is refused
  assert.deepEqual(platformsNotRun([arm64], []), []);
  // the names come from the workers' records, a variant kept
  assert.deepEqual(
    platformsOfWorkers([
      {
        platforms: [
          { OS: 'linux', Architecture: 'amd64' },
          { OS: 'linux', Architecture: 'amd64', Variant: 'v2' },
        ],
      },
      { platforms: [{ OS: 'linux', Architecture: 'arm64' }] },
      {},
    ]),
    ['linux/amd64', 'linux/amd64/v2', 'linux/arm64'],
  );
});
