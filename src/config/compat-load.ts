// Where the compatibility matrices are read from: the compat/ directory at the package root, or the
// directory named by COG_COMPAT_DIR (any of the three files found there replaces the bundled one),
// so the matrices can be refreshed without a release.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { COMPAT_FILES, CompatDataError, parseCompatData } from './compat.js';
import type { CompatData } from './compat.js';

import { packageRoot } from '../package-root.js';

export const COMPAT_DIR_ENV = 'COG_COMPAT_DIR';

export function bundledCompatDir(): string {
  const root = packageRoot();
  if (!root) {
    throw new CompatDataError('cannot find the cog-ts package root to read compat/*.json from', {
      hint: `set ${COMPAT_DIR_ENV} to a directory holding ${Object.values(COMPAT_FILES).join(', ')}`,
    });
  }
  return join(root, 'compat');
}

const cache = new Map<string, CompatData>();

/**
 * Load the matrices. `env` is consulted for COG_COMPAT_DIR; a directory that does not exist, an
 * unreadable file or invalid JSON/data is an error naming the path.
 */
export function loadCompatData(env: NodeJS.ProcessEnv = process.env): CompatData {
  const overrideRaw = env[COMPAT_DIR_ENV];
  const override = overrideRaw === undefined || overrideRaw === '' ? undefined : resolve(overrideRaw);
  if (override !== undefined && !(existsSync(override) && statSync(override).isDirectory())) {
    throw new CompatDataError(`${COMPAT_DIR_ENV}=${overrideRaw}: not a directory`, {
      hint: `point ${COMPAT_DIR_ENV} at a directory holding any of ${Object.values(COMPAT_FILES).join(', ')}, or unset it`,
    });
  }
  const bundled = bundledCompatDir();
  const pick = (name: string): string => {
    if (override !== undefined && existsSync(join(override, name))) return join(override, name);
    return join(bundled, name);
  };
  const paths = { cuda: pick(COMPAT_FILES.cuda), torch: pick(COMPAT_FILES.torch), tf: pick(COMPAT_FILES.tf) };
  const key = JSON.stringify(paths);
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const data = parseCompatData({
    cuda: { file: paths.cuda, data: readJson(paths.cuda) },
    torch: { file: paths.torch, data: readJson(paths.torch) },
    tf: { file: paths.tf, data: readJson(paths.tf) },
  });
  cache.set(key, data);
  return data;
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CompatDataError(`cannot read compatibility data ${file}: ${(err as Error).message}`, {
      hint: `restore the file, or set ${COMPAT_DIR_ENV} to a directory that has it`,
      cause: err,
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CompatDataError(`invalid JSON in compatibility data ${file}: ${(err as Error).message}`, {
      hint: 'fix the file (it must keep the format of the bundled compat/*.json)',
      cause: err,
    });
  }
}
