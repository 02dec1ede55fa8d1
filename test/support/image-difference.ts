/**
 * Why two pushed images that should be the same are not: the steps whose layers differ and the labels
 * that differ, for the failure message of a reproducibility test. A different pip freeze means the
 * package index changed between the builds (a release while the test ran), not that the build is
 * nondeterministic; the same freeze with a different layer is a nondeterministic build. A version drift
 * only (versionDrift) is what the reproducibility test builds its pair again for, once.
 */
import { pushedConfig, pushedManifest } from './pushed-image.js';

export interface ImageFacts {
  readonly layers: readonly string[];
  /** created_by of each history entry that has a layer, in layer order */
  readonly steps: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

const short = (text: string, max = 120) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const shown = (value: string | undefined) => (value === undefined ? 'absent' : short(JSON.stringify(value)));

/** The differences of `b` from `a`, one per line; empty when they have the same layers and labels. */
export function imageDifference(a: ImageFacts, b: ImageFacts): string {
  const lines: string[] = [];
  if (a.layers.length !== b.layers.length)
    lines.push(`layer count: ${a.layers.length} vs ${b.layers.length}`);
  for (let i = 0; i < Math.min(a.layers.length, b.layers.length); i++) {
    if (a.layers[i] === b.layers[i]) continue;
    const step = a.steps[i] ?? b.steps[i] ?? '?';
    lines.push(`layer ${i} (${short(step)}): ${a.layers[i]} vs ${b.layers[i]}`);
  }
  for (const name of [...new Set([...Object.keys(a.labels), ...Object.keys(b.labels)])].sort()) {
    const [x, y] = [a.labels[name], b.labels[name]];
    if (x === y) continue;
    if (name === 'run.cog.pip_freeze') {
      const xs = new Set((x ?? '').split('\n'));
      const ys = new Set((y ?? '').split('\n'));
      const only = (p: Set<string>, q: Set<string>) => [...p].filter((l) => !q.has(l)).join(', ') || '-';
      lines.push(
        `${name}: ${only(xs, ys)} vs ${only(ys, xs)} (the package index changed between the builds)`,
      );
    } else lines.push(`label ${name}: ${shown(x)} vs ${shown(y)}`);
  }
  return lines.join('\n');
}

const freezeLabel = 'run.cog.pip_freeze';

/** A pip freeze line `name==version`, its name normalized as pip compares names; undefined for other lines. */
function pinned(line: string): { readonly name: string; readonly version: string } | undefined {
  const match = /^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$/.exec(line.trim());
  if (!match?.[1] || !match[2]) return undefined;
  return { name: match[1].toLowerCase().replace(/[-_.]+/g, '-'), version: match[2] };
}

/**
 * Whether `b` differs from `a` only as a package release between the two builds makes it differ (a
 * version drift, not a nondeterministic build): the same steps; the `run.cog.pip_freeze` label lists
 * the same packages with another version of some; every other label the same; and each differing layer
 * one of a `pip install` step. Returns the changed packages and layers, for the log; undefined when the
 * images differ in any other way, or do not differ.
 */
export function versionDrift(a: ImageFacts, b: ImageFacts): string | undefined {
  if (a.layers.length !== b.layers.length || a.steps.length !== b.steps.length) return undefined;
  if (a.steps.some((step, i) => step !== b.steps[i])) return undefined;
  const changedLayers: string[] = [];
  for (let i = 0; i < a.layers.length; i++) {
    if (a.layers[i] === b.layers[i]) continue;
    const step = a.steps[i] ?? '';
    if (!/\bpip install\b/.test(step)) return undefined;
    changedLayers.push(`layer ${i} (${short(step)})`);
  }
  if (changedLayers.length === 0) return undefined;
  const names = new Set([...Object.keys(a.labels), ...Object.keys(b.labels)]);
  for (const name of names) if (name !== freezeLabel && a.labels[name] !== b.labels[name]) return undefined;
  const [x, y] = [a.labels[freezeLabel], b.labels[freezeLabel]];
  if (x === undefined || y === undefined) return undefined;
  const xs = new Set(x.split('\n').filter((l) => l !== ''));
  const ys = new Set(y.split('\n').filter((l) => l !== ''));
  const versions = (lines: Set<string>, other: Set<string>) => {
    const found = new Map<string, string>();
    for (const line of lines) {
      if (other.has(line)) continue;
      const pin = pinned(line);
      // a line that is no `name==version`, or a package twice: not a version change
      if (!pin || found.has(pin.name)) return undefined;
      found.set(pin.name, pin.version);
    }
    return found;
  };
  const [before, after] = [versions(xs, ys), versions(ys, xs)];
  if (!before || !after || before.size === 0 || before.size !== after.size) return undefined;
  const changes: string[] = [];
  for (const [name, version] of before) {
    const next = after.get(name);
    // a package added or removed, or the same version spelled otherwise: not a version change
    if (next === undefined || next === version) return undefined;
    changes.push(`${name} ${version} → ${next}`);
  }
  return `${changes.join(', ')} in ${freezeLabel}; ${changedLayers.join(', ')}`;
}

/** Two builds of one image: their digests and pushed references. */
export interface BuiltPair {
  readonly digests: readonly [string, string];
  readonly refs: readonly [string, string];
}

/**
 * Builds a pair with `buildPair(1)`; when its images differ by a version drift only (see versionDrift),
 * logs that and why and builds one more pair, `buildPair(2)`. Resolves with the last pair and its
 * difference (imageDifference, '' when the digests are the same). Any other difference is not retried.
 */
export async function buildPairRetryingDrift(
  buildPair: (attempt: number) => Promise<BuiltPair>,
  facts: (ref: string) => Promise<ImageFacts>,
  log: (line: string) => void,
): Promise<{ readonly pair: BuiltPair; readonly why: string; readonly attempts: number }> {
  for (let attempt = 1; ; attempt++) {
    const pair = await buildPair(attempt);
    if (pair.digests[0] === pair.digests[1]) return { pair, why: '', attempts: attempt };
    const [a, b] = await Promise.all(pair.refs.map(facts));
    const why = imageDifference(a!, b!);
    const drift = versionDrift(a!, b!);
    if (attempt > 1 || drift === undefined) return { pair, why, attempts: attempt };
    log(`the two builds differ only by a package release between them (${drift}); building the pair again`);
  }
}

/** The layers, steps and labels of a pushed image (through skopeo). */
export async function imageFacts(ref: string): Promise<ImageFacts> {
  const manifest = await pushedManifest<{ layers?: { digest: string }[] }>(ref);
  const config = await pushedConfig<{
    history?: { created_by?: string; empty_layer?: boolean }[];
    config?: { Labels?: Record<string, string> };
  }>(ref);
  return {
    layers: (manifest.layers ?? []).map((l) => l.digest),
    steps: (config.history ?? []).filter((h) => h.empty_layer !== true).map((h) => h.created_by ?? '?'),
    labels: config.config?.Labels ?? {},
  };
}
