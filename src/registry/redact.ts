/**
 * Masking secrets in text we show: what a registry, its token service or a credential helper says can
 * echo back the credentials or token we sent, in any of the encodings they travel in. Pure.
 */

/** What to mask for a set of credentials: the secret, and `user:secret` (the Basic header's content). */
export function credentialSecrets(credentials: {
  readonly username: string;
  readonly secret: string;
}): string[] {
  return [credentials.secret, `${credentials.username}:${credentials.secret}`];
}

/** The short JSON escapes, by the character they stand for. */
const jsonShortEscapes: Readonly<Record<string, string>> = {
  '"': '\\\\"',
  '\\': '\\\\\\\\',
  '/': '\\\\/',
  '\b': '\\\\b',
  '\f': '\\\\f',
  '\n': '\\\\n',
  '\r': '\\\\r',
  '\t': '\\\\t',
};

/**
 * A pattern that matches `text` inside a JSON string however the encoder escaped it: each UTF-16 unit
 * as itself, as `\uXXXX` (either case: Go writes `\u003c`, others `\u00E9`), or as a short escape.
 */
function jsonEscapedPattern(text: string): RegExp {
  let source = '';
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    const hex = unit.toString(16).padStart(4, '0');
    const alternatives = [
      `\\u${hex}`, // the unit itself (a lone surrogate cannot be written literally in a pattern)
      `\\\\u${[...hex].map((d) => (/[a-f]/.test(d) ? `[${d}${d.toUpperCase()}]` : d)).join('')}`,
    ];
    const short = jsonShortEscapes[text[i] ?? ''];
    if (short) alternatives.push(short);
    source += `(?:${alternatives.join('|')})`;
  }
  return new RegExp(source, 'g');
}

/**
 * Replaces every occurrence of the secrets in `text` with `***`: as given, JSON-escaped in any way a
 * JSON encoder may escape it, base64 (the `auth` field and Basic headers encode `user:secret`: pass
 * that as a secret too, see credentialSecrets), and URL- or form-encoded (escapes in either case). Secrets shorter than 3
 * characters are left alone (masking them would mask ordinary words).
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  const kept = secrets.filter((secret) => secret.length >= 3).sort((a, b) => b.length - a.length);
  const encodings = kept.flatMap((secret) => {
    const base64 = Buffer.from(secret).toString('base64');
    return [
      base64,
      base64.replace(/=+$/, ''),
      encodeURIComponent(secret),
      // percent-escapes in lower case (RFC 3986 allows either; some servers echo them so)
      encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()),
      new URLSearchParams({ s: secret }).toString().slice(2),
    ];
  });
  let out = text;
  // the longer forms first: one may contain another's text
  for (const form of encodings.sort((a, b) => b.length - a.length)) out = out.split(form).join('***');
  for (const secret of kept) out = out.replace(jsonEscapedPattern(secret), '***');
  return out;
}

/**
 * Masks the secrets in an error's message and stack, and in those of its causes (what `--debug`
 * prints), in place; gRPC errors' `details` too. Returns the error. For errors whose text came from
 * elsewhere (buildkitd's words about a registry) that were built before the secrets could be masked.
 */
export function redactError<T>(err: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return err;
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 20; depth++) {
    current.message = redactSecrets(current.message, secrets);
    if (current.stack !== undefined) current.stack = redactSecrets(current.stack, secrets);
    const withDetails = current as Error & { details?: unknown };
    if (typeof withDetails.details === 'string')
      withDetails.details = redactSecrets(withDetails.details, secrets);
    current = current.cause;
  }
  return err;
}

/**
 * `text` with the credentials of every URL in it masked: `https://user:token@host` becomes
 * `https://user:***@host`, and a lone token (`https://token@host`, as git and pip take one) `***`.
 * For showing what carries a user's URLs (requirements lines with `--extra-index-url`, `git+https`).
 */
export function maskUrlCredentials(text: string): string {
  return text.replace(
    // userinfo runs to the last @ before the host, as pip and urllib split it: a username may be an
    // e-mail address, a password may hold an @
    /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#"'\\]+)@/gi,
    (_match, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return `${scheme}${colon === -1 ? '***' : `${userinfo.slice(0, colon)}:***`}@`;
    },
  );
}
