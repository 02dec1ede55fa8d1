/**
 * Why two pushed images that should be the same are not: the steps whose layers differ and the labels
 * that differ, for the failure message of a reproducibility test. A different pip freeze means the
 * package index changed between the builds (a release while the test ran), not that the build is
 * nondeterministic; the same freeze with a different layer is a nondeterministic build.
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
