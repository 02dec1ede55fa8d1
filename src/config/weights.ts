// Rules for the managed `weights` list: names, targets, sources and their include/exclude patterns.
import { posix } from 'node:path';
import type { FieldPath, PathIssue } from './issues.js';
import type { WeightConfig } from './types.js';

const NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const URI_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const ALLOWED_SCHEMES = ['hf', 'file', 'https'];

export function validateWeights(weights: readonly WeightConfig[]): PathIssue[] {
  const issues: PathIssue[] = [];
  const names = new Map<string, number>();
  const targets: { clean: string; index: number }[] = [];

  weights.forEach((w, i) => {
    if (!NAME.test(w.name)) {
      issues.push({
        path: ['weights', i, 'name'],
        value: w.name,
        message: 'must be lowercase letters and digits, separated by single ".", "_" or "-"',
      });
    } else if (names.has(w.name)) {
      issues.push({
        path: ['weights', i, 'name'],
        value: w.name,
        message: `duplicate weight name (also weights[${names.get(w.name) ?? 0}])`,
      });
    } else {
      names.set(w.name, i);
    }

    if (!posix.isAbsolute(w.target)) {
      issues.push({ path: ['weights', i, 'target'], value: w.target, message: 'must be an absolute path' });
    } else {
      const clean = posix.normalize(w.target).replace(/\/+$/, '') || '/';
      if (clean === '/') {
        issues.push({ path: ['weights', i, 'target'], value: w.target, message: 'must not be "/"' });
      } else {
        const clash = targets.find(
          (t) => t.clean === clean || isAncestor(t.clean, clean) || isAncestor(clean, t.clean),
        );
        if (clash !== undefined) {
          issues.push({
            path: ['weights', i, 'target'],
            value: w.target,
            message:
              clash.clean === clean
                ? `duplicate target (also weights[${clash.index}])`
                : `overlaps the target of weights[${clash.index}] ("${clash.clean}"); targets must be disjoint`,
          });
        }
        targets.push({ clean, index: i });
      }
    }

    w.source.forEach((s, j) => {
      const base: FieldPath = ['weights', i, 'source', j];
      const scheme = URI_SCHEME.exec(s.uri)?.[1]?.toLowerCase();
      if (s.uri.trim() === '') issues.push({ path: [...base, 'uri'], message: 'must not be empty' });
      else if (scheme !== undefined && !ALLOWED_SCHEMES.includes(scheme)) {
        issues.push({
          path: [...base, 'uri'],
          value: s.uri,
          message: 'unsupported scheme; use hf://, file://, https:// or a local path',
        });
      }
      for (const key of ['include', 'exclude'] as const) {
        (s[key] ?? []).forEach((pattern, k) => {
          const message = checkPattern(pattern);
          if (message !== undefined) issues.push({ path: [...base, key, k], value: pattern, message });
        });
      }
    });
  });
  return issues;
}

function isAncestor(dir: string, child: string): boolean {
  return child.startsWith(dir + '/');
}

function checkPattern(pattern: string): string | undefined {
  const p = pattern.trim();
  if (p === '') return 'pattern must not be empty';
  if (p.startsWith('!')) return 'negated patterns ("!") are not supported; use exclude instead';
  if (p.includes('\\')) return 'patterns must use "/" and no backslashes';
  return undefined;
}
