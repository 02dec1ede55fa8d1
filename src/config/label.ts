// The run.cog.config image label: the effective cog.yaml as JSON, with the resolved CUDA / cuDNN for
// GPU builds and the run: reference stored under "predict". Empty values are left out (Go's omitempty).
import type { CompletedConfig } from './types.js';

export const CONFIG_LABEL = 'run.cog.config';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function isEmpty(value: unknown): boolean {
  return (
    value === undefined ||
    value === null ||
    value === '' ||
    value === false ||
    value === 0 ||
    (Array.isArray(value) && value.length === 0)
  );
}

/** Build an object from entries, dropping empty values; key order is the order given. */
function omitEmpty(entries: [string, Json | undefined][]): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const [key, value] of entries) if (!isEmpty(value)) out[key] = value as Json;
  return out;
}

/** The label value as an object; `JSON.stringify` it for the label. */
export function configLabel(completed: CompletedConfig): { [key: string]: Json } {
  const c = completed.config;
  const b = c.build ?? {};
  const build = omitEmpty([
    ['gpu', completed.gpu],
    ['python_version', b.python_version],
    ['python_requirements', b.python_requirements],
    ['python_packages', b.python_packages],
    [
      'run',
      b.run?.map((r) =>
        omitEmpty([
          ['command', r.command],
          [
            'mounts',
            r.mounts.map((m) =>
              omitEmpty([
                ['type', m.type],
                ['id', m.id],
                ['target', m.target],
              ]),
            ),
          ],
        ]),
      ),
    ],
    ['system_packages', b.system_packages],
    ['pre_install', b.pre_install],
    ['cuda', completed.cuda ?? undefined],
    ['cudnn', completed.cudnn ?? undefined],
    ['sdk_version', b.sdk_version],
  ]);
  return omitEmpty([
    // Go marshals a non-nil *Build even when every field is empty
    ['build', c.build === undefined ? undefined : build],
    ['image', completed.image ?? undefined],
    ['model', completed.model ?? undefined],
    ['predict', completed.predict ?? undefined],
    ['train', completed.train ?? undefined],
    ['concurrency', completed.concurrency === null ? undefined : { max: completed.concurrency.max }],
    ['environment', c.environment],
    [
      'weights',
      completed.weights.map((w) =>
        omitEmpty([
          ['name', w.name],
          ['target', w.target],
          [
            'source',
            w.source.map((s) =>
              omitEmpty([
                ['uri', s.uri],
                ['include', s.include],
                ['exclude', s.exclude],
              ]),
            ),
          ],
        ]),
      ),
    ],
  ]);
}
