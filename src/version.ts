import { readFileSync } from 'node:fs';

/** The cog-ts version, read once from package.json at the repository root. */
export function cogVersion(): string {
  const pkgUrl = new URL('../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(pkgUrl, 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error(`no version in ${pkgUrl.pathname}`);
  return pkg.version;
}
