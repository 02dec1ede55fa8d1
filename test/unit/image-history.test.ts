// The compiled image config's history: one non-empty entry per layer the image will have, for every
// plan shape, so BuildKit's exporter keeps it instead of describing layers by their cache records.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OciImageConfig } from '../../src/buildkit/gateway.js';
import type { pb_Input } from '../../src/gen/types.js';
import type { MarshalledOp } from '../../src/llb/definition.js';
import { baseHistory, compilePlan, withLayerHistory } from '../../src/plan/compile.js';
import { planBuild } from '../../src/plan/plan.js';
import type { PlanInput } from '../../src/plan/types.js';
import { minimalPlanInput } from '../support/plan-inputs.js';

const baseConfig: OciImageConfig = {
  rootfs: { type: 'layers', diff_ids: ['sha256:a', 'sha256:b', 'sha256:c'] },
  history: [
    { created: '2024-01-01T00:00:00Z', created_by: 'base layer 1' },
    { created: '2024-01-01T00:00:00Z', created_by: 'ENV X=1', empty_layer: true },
    { created: '2024-01-01T00:00:00Z', created_by: 'base layer 2' },
    { created: '2024-01-01T00:00:00Z', created_by: 'base layer 3' },
  ],
};

/**
 * The layers BuildKit exports for `ops`' result (an id per layer), worked out the way its cache does
 * (cache/refs.go layerWalk, cache/manager.go Diff): an image is its layers; an exec or file op adds
 * one to its base (scratch has none); a merge is its inputs' layers in order; a diff is the layers
 * between lower and upper when upper is built on lower, none for a state and itself, else one blob.
 */
function exportedLayers(ops: readonly MarshalledOp[], baseLayers: number): string[] {
  const byDigest = new Map(ops.map((o) => [o.digest, o]));
  const edge = (op: MarshalledOp, input: number | string | undefined) => {
    const i = Number(input ?? -1);
    return i < 0 ? undefined : op.op.inputs?.[i];
  };
  const layersOf = (input: pb_Input | undefined): string[] => {
    if (!input) return [];
    const op = byDigest.get(input.digest ?? '');
    assert.ok(op, `no op ${input.digest}`);
    const index = Number(input.index ?? 0);
    const id = `${op.digest}:${index}`;
    const { exec, file, merge, diff, source } = op.op;
    if (source) {
      assert.match(source.identifier ?? '', /^docker-image:\/\//, 'only an image is a filesystem of layers');
      return Array.from({ length: baseLayers }, (_, i) => `${id}#${i}`);
    }
    if (exec) {
      const mount = (exec.mounts ?? []).find((m) => Number(m.output ?? -1) === index);
      assert.ok(mount, 'an exec output is a mount');
      return [...layersOf(edge(op, mount.input)), id];
    }
    if (file) {
      const actions = file.actions ?? [];
      const inputs = op.op.inputs?.length ?? 0;
      let action = actions.find((a) => Number(a.output ?? -1) === index);
      assert.ok(action, 'a file output is an action');
      // back through the chain of actions to the filesystem the first one starts from
      while (Number(action.input ?? -1) >= inputs) {
        const previous: number = Number(action.input) - inputs;
        action = actions[previous];
        assert.ok(action);
      }
      return [...layersOf(edge(op, action.input)), id];
    }
    if (merge) return (merge.inputs ?? []).flatMap((m) => layersOf(edge(op, m.input)));
    if (diff) {
      const lower = edge(op, diff.lower?.input);
      const upper = edge(op, diff.upper?.input);
      if (!upper) return [];
      if (!lower) return layersOf(upper);
      if (lower.digest === upper.digest && Number(lower.index ?? 0) === Number(upper.index ?? 0)) return [];
      const below = layersOf(lower);
      const above = layersOf(upper);
      const onLower = above.length > below.length && below.every((l, i) => above[i] === l);
      return onLower ? above.slice(below.length) : [id];
    }
    throw new Error(`unexpected ${op.kind} op in the image`);
  };
  const terminal = ops.at(-1);
  assert.ok(terminal);
  return layersOf(terminal.op.inputs?.[0]);
}

const nonEmpty = (config: OciImageConfig) => (config.history ?? []).filter((h) => h.empty_layer !== true);

const shapes: Record<string, Partial<PlanInput>> = {
  minimal: {},
  'requirements (tini beside the installs)': { requirements: 'six==1.17.0' },
  'system packages (tini with them)': { systemPackages: ['git'] },
  'build.run steps after the tini branch': {
    runCommands: [
      { command: 'echo one', secrets: [] },
      { command: 'echo two', secrets: [] },
    ],
  },
  'a config file not named cog.yaml (a step after the source)': {
    configFileName: 'other.yaml',
    predict: 'predict.py:Predictor',
  },
  '--separate-weights': { weights: { dirs: ['weights'], files: ['big.bin'] } },
  'a CUDA base': {
    gpu: true,
    baseImage: 'nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04',
    baseKind: 'cuda',
    cuda: '12.1',
  },
  'a cog-base image': {
    baseImage: 'r8.im/cog-base:python3.11',
    baseKind: 'cog-base',
    systemPackages: ['git'],
  },
};

for (const [name, overrides] of Object.entries(shapes)) {
  test(`history: one non-empty entry per exported layer, named by its step, ${name}`, () => {
    const compiled = compilePlan(planBuild(minimalPlanInput(overrides)), { baseConfig });
    const { ops } = compiled.image.marshal();
    const layers = exportedLayers(ops, 3);
    assert.equal(nonEmpty(compiled.config).length, layers.length);
    // the base's entries first, as they were; then the plan's, named by the ops that make the layers
    assert.deepEqual(compiled.config.history?.slice(0, 4), baseConfig.history);
    const stepOf = new Map(ops.map((o) => [o.digest, o.metadata.description?.['llb.customname']]));
    assert.deepEqual(
      nonEmpty(compiled.config)
        .slice(3)
        .map((h) => h.created_by),
      layers.slice(3).map((id) => stepOf.get(id.split(':').slice(0, 2).join(':'))),
    );
    for (const entry of nonEmpty(compiled.config).slice(3))
      assert.equal(entry.created, undefined, 'without --timestamp BuildKit says when the layer was made');
  });
}

test('a branch built beside later steps keeps its place in the history', () => {
  const compiled = compilePlan(planBuild(minimalPlanInput({ requirements: 'six' })), { baseConfig });
  const added = nonEmpty(compiled.config)
    .slice(3)
    .map((h) => h.created_by);
  assert.deepEqual(added.slice(0, 2), ['install tini', 'copy uv']);
  assert.equal(added.at(-1), 'copy the project to /src');
});

test('with --timestamp every added entry is created at SOURCE_DATE_EPOCH; the base keeps its dates', () => {
  const compiled = compilePlan(planBuild(minimalPlanInput({ sourceDateEpoch: 1700000000 })), {
    baseConfig,
    sourceDateEpoch: 1700000000,
  });
  const history = compiled.config.history ?? [];
  assert.deepEqual(history.slice(0, 4), baseConfig.history);
  for (const entry of history.slice(4)) assert.equal(entry.created, '2023-11-14T22:13:20Z');
  const more = withLayerHistory(compiled.config, ['write x'], 1700000000);
  assert.deepEqual(more.history?.at(-1), { created: '2023-11-14T22:13:20Z', created_by: 'write x' });
});

test('a base whose history does not count its layers is made to: missing entries added, extra ones emptied', () => {
  const short = baseHistory({ rootfs: { type: 'layers', diff_ids: ['sha256:a', 'sha256:b'] } }, 'x:1');
  assert.deepEqual(short, [{ created_by: 'a layer of x:1' }, { created_by: 'a layer of x:1' }]);
  const long = baseHistory(
    {
      rootfs: { type: 'layers', diff_ids: ['sha256:a'] },
      history: [{ created_by: 'one' }, { created_by: 'two' }],
    },
    'x:1',
  );
  assert.deepEqual(long, [{ created_by: 'one' }, { created_by: 'two', empty_layer: true }]);
});
