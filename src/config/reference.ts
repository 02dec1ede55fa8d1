// Image names: checking that `model` is a bare repository, and the default image name for a project.

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_PART = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^\d+$/;

export type RepositoryCheck = { ok: true } | { ok: false; message: string };

/**
 * A repository without tag or digest: [registry[:port]/]path/to/name, lowercase path components.
 * The first component is a registry when it has a "." or ":" or is "localhost".
 */
export function checkBareRepository(ref: string): RepositoryCheck {
  if (ref.includes('@'))
    return { ok: false, message: 'must be a bare repository — tags and digests are not allowed' };
  const parts = ref.split('/');
  const last = parts[parts.length - 1] ?? '';
  if (last.includes(':'))
    return { ok: false, message: 'must be a bare repository — tags and digests are not allowed' };
  let pathParts = parts;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    const [host, port, ...extra] = first.split(':');
    const hostOk = (host ?? '').split('.').every((p) => DOMAIN_PART.test(p));
    if (!hostOk || extra.length > 0 || (port !== undefined && !PORT.test(port))) {
      return { ok: false, message: `invalid repository: invalid registry host "${first}"` };
    }
    pathParts = parts.slice(1);
  }
  if (ref === '' || pathParts.length === 0) return { ok: false, message: 'invalid repository: empty name' };
  for (const p of pathParts) {
    if (!COMPONENT.test(p)) {
      return {
        ok: false,
        message: `invalid repository: path component "${p}" must be lowercase letters, digits and separators (., _, __, -)`,
      };
    }
  }
  if (ref.length > 255) return { ok: false, message: 'invalid repository: longer than 255 characters' };
  return { ok: true };
}

/**
 * The image name used when cog.yaml sets neither image nor model: "cog-" + the project directory's
 * base name, lowercased, spaces as "-", other characters outside [a-z0-9-] dropped, at most 30 chars.
 * A name component may not end with a separator: dashes left at the end (by the cut or by the
 * directory's name) are dropped, and a directory whose name leaves nothing gives "cog".
 */
export function defaultImageName(projectDirBaseName: string): string {
  let name = projectDirBaseName
    .toLowerCase()
    .replace(/ /g, '-')
    .replace(/[^a-z0-9-]/g, '');
  if (name.startsWith('cog-')) name = name.slice(4);
  name = name.slice(0, 26).replace(/-+$/, '');
  return name === '' ? 'cog' : `cog-${name}`;
}
