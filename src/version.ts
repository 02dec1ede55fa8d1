import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './package-root.js';

let version: string | undefined;

/** The cog-ts version, read once from the package's package.json. */
export function cogVersion(): string {
  if (version) return version;
  const root = packageRoot();
  if (!root) throw new Error('cannot find the cog-ts package.json');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error(`no version in ${join(root, 'package.json')}`);
  return (version = pkg.version);
}
