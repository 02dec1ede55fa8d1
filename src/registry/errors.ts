/**
 * Registry failures as typed errors. A registry answers errors as `{"errors":[{code,message,detail}]}`;
 * we keep the codes, the status and the request (URL without query: upload URLs carry state tokens),
 * and give a hint that says what to do. Nothing here ever includes a credential or a token.
 */
import type { Dispatcher } from 'undici';
import { CogError } from '../errors.js';
import { redactSecrets } from './redact.js';
import { isRecord } from '../is-record.js';

export interface RegistryErrorInit {
  readonly status: number | undefined;
  readonly method: string;
  readonly url: string;
  readonly codes?: readonly string[];
  /** what the registry's error body said (errorEntry), when it said anything */
  readonly said?: string;
  readonly retryAfterMs?: number | undefined;
  readonly hint?: string;
  readonly cause?: unknown;
}

export class RegistryError extends CogError {
  readonly status: number | undefined;
  readonly method: string;
  /** redacted: no query, no user-info */
  readonly url: string;
  readonly codes: readonly string[];
  readonly said: string;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, init: RegistryErrorInit) {
    super(message, {
      ...(init.hint === undefined ? {} : { hint: init.hint }),
      ...(init.cause === undefined ? {} : { cause: init.cause }),
    });
    this.status = init.status;
    this.method = init.method;
    this.url = redactUrl(init.url);
    this.codes = init.codes ?? [];
    this.said = init.said ?? '';
    this.retryAfterMs = init.retryAfterMs;
  }
}

/**
 * Whether a manifest PUT was refused because the registry lacks a blob the manifest references
 * (`MANIFEST_BLOB_UNKNOWN`, or `BLOB_UNKNOWN` from some registries).
 */
export function isBlobUnknownError(err: unknown): boolean {
  return (
    err instanceof RegistryError &&
    err.codes.some((code) => code === 'MANIFEST_BLOB_UNKNOWN' || code === 'BLOB_UNKNOWN')
  );
}

/** The URL without user-info and query string. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return url.replace(/[?#].*$/, '');
  }
}

/** Seconds or an HTTP date, as milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function headerValue(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Context for turning a failed response into a RegistryError. */
export interface ErrorContext {
  /** what we were doing, e.g. "uploading blob sha256:ab…" */
  readonly what: string;
  readonly method: string;
  readonly url: string;
  /** `host[:port]` of the registry, for hints */
  readonly registry: string;
  readonly repository?: string;
  /** whether credentials were found for the registry */
  readonly hadCredentials?: boolean;
  /**
   * what we sent the registry that its words must not show: the credentials (credentialSecrets) and
   * the tokens; a registry or token service may echo them back in its error body
   */
  readonly secrets?: readonly string[];
}

function hintFor(status: number, ctx: ErrorContext, codes: readonly string[]): string {
  const repo = ctx.repository ?? 'the repository';
  if (status === 401)
    return ctx.hadCredentials
      ? `the registry rejected the credentials for ${ctx.registry}: run \`cog login ${ctx.registry}\` again, or fix COG_REGISTRY_USERNAME / COG_REGISTRY_PASSWORD`
      : `log in first: \`cog login ${ctx.registry}\`, or set COG_REGISTRY_USERNAME and COG_REGISTRY_PASSWORD`;
  if (status === 403 || codes.includes('DENIED'))
    return `your account has no access to ${repo} on ${ctx.registry}; check the repository name and your permissions`;
  if (codes.includes('MANIFEST_BLOB_UNKNOWN'))
    return `${ctx.registry} does not hold a blob the manifest names (lost or purged meanwhile); push again`;
  if (codes.includes('DIGEST_INVALID') || codes.includes('SIZE_INVALID'))
    return 'the bytes the registry received do not match the blob; push again (rebuild first if the local image store changed)';
  if (codes.includes('NAME_INVALID'))
    return `${ctx.registry} does not accept ${repo} as a repository name; use lowercase letters, digits, and . _ - / between them`;
  if (codes.includes('MANIFEST_INVALID') || codes.includes('UNSUPPORTED'))
    return `${ctx.registry} does not accept this manifest; check that it supports OCI images and indexes`;
  if (status === 404)
    return `check that ${repo} exists on ${ctx.registry} and that the tag or digest is right`;
  if (status === 413)
    return `${ctx.registry}, or a proxy in front of it, limits the size of request bodies below what this needs; raise the limit (nginx: client_max_body_size)`;
  if (status === 429) return 'the registry is rate limiting requests; wait a little and try again';
  if (status >= 500) return 'the registry had an internal problem; try again later';
  // a request about no repository (the /v2/ check, a login) has no reference to check
  const check =
    ctx.repository === undefined
      ? 'check the registry address'
      : 'check the reference and the registry address';
  if (status >= 300 && status < 400)
    return `${ctx.registry} answered with a redirect, where a registry answers the API itself; ${check}`;
  return `the registry rejected the request; ${check}`;
}

const maxBody = 64 * 1024;

/**
 * One entry of a registry's error body as the user reads it: the message, the code when the message
 * does not already say it (`blob unknown to registry [MANIFEST_BLOB_UNKNOWN]`), and a detail that is
 * text (distribution names the missing blob's digest there); structured details are left out.
 */
export function errorEntry(code: string | undefined, message: string, detail: unknown): string {
  const squash = (t: string) => t.toUpperCase().replace(/[^A-Z0-9]/g, '');
  let text = message || code || '';
  if (message && code && squash(message) !== squash(code)) text += ` [${code}]`;
  const detailText =
    typeof detail === 'string'
      ? detail
      : typeof (detail as { message?: unknown } | null)?.message === 'string'
        ? (detail as { message: string }).message
        : '';
  if (detailText && text) text += `: ${detailText.slice(0, 200)}`;
  return text;
}

/**
 * What a registry's error body says: its error codes, and its entries as one line (errorEntry); empty
 * when the body is not the spec's error shape. `secrets` are masked in the whole body before any of it
 * is cut short (a cut would leave part of a secret unmasked). Reads at most 64 KiB; consumes the
 * response body.
 */
export async function readErrorBody(
  res: Dispatcher.ResponseData,
  secrets: readonly string[] = [],
): Promise<{ readonly codes: string[]; readonly said: string }> {
  let text = '';
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (text.length < maxBody) text += chunk.toString('utf8');
    }
  } catch {
    // the body is only decoration
  }
  // masked in the JSON as sent (escaped any way), then in its strings (a JSON text quoted in one)
  text = redactSecrets(text, secrets);
  const mask = (value: unknown): unknown =>
    typeof value === 'string' ? redactSecrets(value, secrets) : value;
  const codes: string[] = [];
  const parts: string[] = [];
  try {
    const json = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown; detail?: unknown }[] };
    for (const e of json.errors ?? []) {
      const code = typeof e.code === 'string' ? e.code : undefined;
      if (code) codes.push(code);
      const detail = isRecord(e.detail) ? { ...e.detail, message: mask(e.detail.message) } : mask(e.detail);
      const part = errorEntry(code, typeof e.message === 'string' ? (mask(e.message) as string) : '', detail);
      if (part) parts.push(part);
    }
  } catch {
    // not the spec's error body
  }
  return { codes, said: parts.join('; ').slice(0, 400) };
}

/**
 * Reads (at most 64 KiB of) the error body and builds the error, with `ctx.secrets` masked in what the
 * registry said. Consumes the response body.
 */
export async function responseError(res: Dispatcher.ResponseData, ctx: ErrorContext): Promise<RegistryError> {
  const { codes, said } = await readErrorBody(res, ctx.secrets);
  const status = res.statusCode;
  const target = status >= 300 && status < 400 ? redirectTarget(res, ctx) : undefined;
  return new RegistryError(
    `${ctx.what}: ${ctx.method} ${redactUrl(ctx.url)} answered HTTP ${status}` +
      `${target ? `, a redirect to ${target}` : ''}${said ? ` (${said})` : ''}`,
    {
      status,
      method: ctx.method,
      url: ctx.url,
      codes,
      said,
      retryAfterMs: parseRetryAfter(headerValue(res.headers, 'retry-after')),
      hint: hintFor(status, ctx, codes),
    },
  );
}

/**
 * Where a redirect points, as the user may read it: resolved against the request's URL, without
 * user-info or query (redactUrl; a login page's URL may carry a token), `ctx.secrets` masked.
 */
function redirectTarget(res: Dispatcher.ResponseData, ctx: ErrorContext): string | undefined {
  const location = headerValue(res.headers, 'location')?.trim();
  if (!location) return undefined;
  let url: string;
  try {
    url = new URL(location, ctx.url).toString();
  } catch {
    url = location.replace(/\/\/[^/]*@/, '//'); // no user-info, even in what is not a URL
  }
  return redactSecrets(redactUrl(url), ctx.secrets ?? []);
}
