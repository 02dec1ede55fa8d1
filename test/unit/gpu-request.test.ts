// Which CDI devices a model run asks for, and the op that carries them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CogError } from '../../src/errors.js';
import { image } from '../../src/llb/index.js';
import { gpuRequest } from '../../src/runtime/gpu.js';
import { smokeTest } from '../../src/runtime/smoke.js';
import { codec } from '../../src/proto/schema.js';

const nvidiaAll = { name: 'nvidia.com/gpu=all', autoAllow: false };
const gpu0 = { name: 'nvidia.com/gpu=0', autoAllow: true };
const gpu1 = { name: 'nvidia.com/gpu=1', autoAllow: true };
const other = { name: 'vendor1.com/device=foo', autoAllow: true };
const worker = [gpu0, gpu1, nvidiaAll, other];

describe('gpuRequest', () => {
  const cases: [string, boolean, string | undefined, string[], boolean][] = [
    ['a CPU model asks for nothing', false, undefined, [], false],
    ['gpu: true asks for nvidia.com/gpu=all when offered', true, undefined, ['nvidia.com/gpu=all'], true],
    ['--gpus none wins over gpu: true', true, 'none', [], false],
    ['--gpus all on a CPU model still asks', false, 'all', ['nvidia.com/gpu=all'], true],
    ['a count takes the first single devices', true, '2', ['nvidia.com/gpu=0', 'nvidia.com/gpu=1'], false],
    ['device indexes', true, 'device=1', ['nvidia.com/gpu=1'], false],
    [
      'quoted device indexes, as docker users write them',
      true,
      '"device=0,1"',
      ['nvidia.com/gpu=0', 'nvidia.com/gpu=1'],
      false,
    ],
  ];
  for (const [name, needsGpu, flag, devices, entitlement] of cases) {
    test(name, () => {
      const request = gpuRequest(needsGpu, flag, worker);
      assert.deepEqual(request.devices, devices);
      assert.equal(request.needsEntitlement, entitlement);
    });
  }

  test('without an "all" device, all is every GPU device offered', () => {
    assert.deepEqual(gpuRequest(true, undefined, [gpu0, gpu1, other]).devices, [
      'nvidia.com/gpu=0',
      'nvidia.com/gpu=1',
    ]);
  });

  test('gpu: true on a worker without GPUs is an error that says how to add them', () => {
    assert.throws(
      () => gpuRequest(true, undefined, [other]),
      (err: unknown) =>
        err instanceof CogError &&
        /build\.gpu: true/.test(err.message) &&
        /no nvidia\.com\/gpu CDI device/.test(err.message) &&
        /nvidia-ctk cdi generate/.test(err.hint ?? '') &&
        /--gpus none/.test(err.hint ?? ''),
    );
  });

  test('an index the worker lacks, or too many, names what is offered', () => {
    assert.throws(() => gpuRequest(true, '7', worker), /offers 2 single GPU/);
    assert.throws(
      () => gpuRequest(true, 'device=3', worker),
      (err: unknown) =>
        err instanceof CogError &&
        /nvidia\.com\/gpu=3/.test(err.message) &&
        /nvidia\.com\/gpu=0/.test(err.hint ?? ''),
    );
  });

  test('a malformed --gpus value is refused', () => {
    assert.throws(() => gpuRequest(false, 'capabilities=compute;x', worker), /not a GPU request/);
  });
});

describe('the model run op', () => {
  test('carries the devices as ExecOp.cdiDevices, and none when none are asked for', () => {
    const decode = (devices?: string[]) => {
      const def = smokeTest(image('python:3.11-slim'), { ...(devices ? { devices } : {}) }).marshal()
        .definition;
      const ops = (def.def ?? []).map((bytes) => codec('pb.Op').decode(bytes));
      return ops.find((op) => op.exec)?.exec;
    };
    assert.deepEqual(decode(['nvidia.com/gpu=all'])?.cdiDevices, [{ name: 'nvidia.com/gpu=all' }]);
    assert.deepEqual(decode()?.cdiDevices ?? [], []);
  });
});
