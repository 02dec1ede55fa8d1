// Keys cog.yaml does not define. Upstream Cog drops them silently; we warn, naming the key and,
// when one is close, the key that was probably meant.
import { isMap, isScalar, isSeq } from 'yaml';
import { fieldName } from './issues.js';
import type { ConfigIssue, FieldPath } from './issues.js';
import { BUILD_KEYS, KNOWN_KEYS } from './schema.js';
import type { KeySpec } from './schema.js';
import { nodeLocation, resolved } from './source.js';
import type { YamlSource } from './source.js';

export function findUnknownKeys(source: YamlSource): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  walk(source, source.doc.contents, KNOWN_KEYS, [], out);
  return out;
}

function walk(source: YamlSource, node: unknown, spec: KeySpec, path: FieldPath, out: ConfigIssue[]): void {
  if (isMap(node) && spec.keys !== undefined) {
    const known = spec.keys;
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      if (typeof pair.key.value === 'symbol') {
        // a merge key (`<<: *base`, or a list of them): the keys it brings in are this map's
        for (const merged of isSeq(pair.value) ? pair.value.items : [pair.value])
          walk(source, resolved(source, merged), spec, path, out);
        continue;
      }
      const key = String(pair.key.value);
      const child = Object.hasOwn(known, key) ? known[key] : undefined;
      if (child === undefined) {
        const field = fieldName([...path, key]);
        const suggestion = suggestKey(key, Object.keys(known), path);
        // a suggestion for a top-level key may already be a dotted build.* name
        const suggested =
          suggestion === undefined
            ? undefined
            : path.length === 0
              ? suggestion
              : fieldName([...path, suggestion]);
        const issue: ConfigIssue = {
          field,
          message: `unknown field "${field}" is ignored${suggested === undefined ? '' : `; did you mean "${suggested}"?`}`,
        };
        const loc = nodeLocation(source, pair.key);
        if (loc !== undefined) issue.location = loc;
        out.push(issue);
        continue;
      }
      walk(source, pair.value, child, [...path, key], out);
    }
  } else if (isSeq(node) && spec.items !== undefined) {
    node.items.forEach((item, i) => walk(source, item, spec.items ?? {}, [...path, i], out));
  }
}

/** The closest known key, if it is close enough to be a typo; build keys written at the top level too. */
export function suggestKey(key: string, candidates: readonly string[], path: FieldPath): string | undefined {
  if (path.length === 0 && (BUILD_KEYS as readonly string[]).includes(key)) return `build.${key}`;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  const limit = Math.max(1, Math.min(3, Math.floor(key.length / 3)));
  if (best !== undefined && bestDistance <= limit) return best;
  if (path.length === 0) {
    // python_verison at the top level: probably a misplaced, misspelled build key
    const nested = suggestKey(key, BUILD_KEYS, ['build']);
    if (nested !== undefined) return `build.${nested}`;
  }
  return undefined;
}

/** Levenshtein distance with adjacent transpositions counted as one edit. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * cols + j] = best;
    }
  }
  return at(a.length, b.length);
}
