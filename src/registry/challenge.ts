/** `WWW-Authenticate` headers: `Bearer realm="…",service="…",scope="…"` and `Basic realm="…"`. */

export interface Challenge {
  /** lower-case: `bearer`, `basic`, … */
  readonly scheme: string;
  /** parameter names lower-case */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses every challenge in a header value (several may share one header, separated by commas).
 * Quoted values may hold commas and backslash escapes.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = header.length;
  const skip = (chars: string) => {
    while (i < n && chars.includes(header[i]!)) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skip(' \t,');
    const scheme = token();
    if (!scheme) {
      i++;
      continue;
    }
    const challenge = { scheme: scheme.toLowerCase(), params: {} as Record<string, string> };
    out.push(challenge);
    skip(' \t');
    // parameters until the next scheme (a token not followed by '=')
    while (i < n) {
      skip(' \t,');
      const save = i;
      const name = token();
      skip(' \t');
      if (!name || header[i] !== '=') {
        i = save;
        break;
      }
      i++;
      skip(' \t');
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ') i++;
        value = header.slice(start, i);
      }
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return out;
}

/** The challenge we answer: Bearer when offered, else Basic, else undefined. */
export function pickChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const all = parseChallenges(header);
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
}

/** `repository:<repo>:<actions>` */
export function repositoryScope(repository: string, actions: readonly ('pull' | 'push')[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** The scopes to read from `repository`. */
export function pullScopes(repository: string): string[] {
  return [repositoryScope(repository, ['pull'])];
}

/** The scopes to write to `repository`, plus reading `from` (a mount's source) when it is another one. */
export function pushScopes(repository: string, from?: string): string[] {
  const scopes = [repositoryScope(repository, ['pull', 'push'])];
  if (from && from !== repository) scopes.push(repositoryScope(from, ['pull']));
  return scopes;
}
