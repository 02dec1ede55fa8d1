/**
 * A predictor file reached through a symbolic link that leaves the project: the build copies the link
 * into /src as it is, so in the image it points at nothing, while the schema (read on this machine,
 * through the link) looked fine.
 */
import { lstat, readlink } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';

/** The link that takes `file` out of the project in the image, and where it points. */
export interface EscapingLink {
  /** the link, relative to the project */
  readonly link: string;
  readonly target: string;
}

/** Links followed before giving up: a loop is reported by whoever reads the file. */
const maxLinks = 40;

/**
 * Resolves `file` (project-relative, `/`-separated) as it will resolve under /src in the image: each
 * link's target is read as the image reads it, so an absolute target, or a relative one climbing above
 * the project, escapes. Undefined when the path stays inside (or does not exist: that is reported
 * elsewhere).
 */
export async function escapingLink(projectDir: string, file: string): Promise<EscapingLink | undefined> {
  let pending = file.split('/');
  const resolved: string[] = [];
  let lastLink: EscapingLink | undefined;
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (resolved.length === 0) return lastLink;
      resolved.pop();
      continue;
    }
    const path = [...resolved, part].join('/');
    const stat = await lstat(join(projectDir, path)).catch(() => undefined);
    if (!stat?.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    if (++links > maxLinks) return undefined;
    const target = await readlink(join(projectDir, path));
    lastLink = { link: path, target };
    if (isAbsolute(target)) return lastLink;
    pending = [...target.split('/'), ...pending];
  }
  return undefined;
}

/** What to tell the user about `file` (named in cog.yaml's `key`) escaping through `escape`. */
export function escapingLinkMessage(
  file: { readonly key: 'run' | 'predict' | 'train'; readonly file: string },
  escape: EscapingLink,
  configFile: string,
): { message: string; hint: string } {
  const role = file.key === 'train' ? 'trainer' : 'predictor';
  const where = isAbsolute(escape.target) ? 'an absolute path' : 'a path outside the project';
  return {
    message:
      `${escape.link} is a link to ${escape.target} (${where}): the ${role} ${configFile} names in ` +
      `${file.key}: would be a dangling link in the image's /src, and its server would fail to start`,
    hint: `copy the file into the project in place of the link, or make the link relative and inside the project`,
  };
}
