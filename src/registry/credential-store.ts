/**
 * Writing registry credentials where docker (and our reader in buildkit/docker-config.ts) finds them:
 * the credential helper for the registry (`credHelpers[host]`, else `credsStore`), run as
 * `docker-credential-<helper> store|erase`; without a helper, config.json `auths[key].auth` =
 * base64("user:secret"). config.json is rewritten atomically (temp file + rename, mode 0600) with every
 * other field kept. No secret is ever part of a message: helper output is redacted before it is shown.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  type RegistryCredentials,
  configKeyFor,
  configReadError,
  type DockerConfig,
  dockerConfigDir,
  helperFor,
  normalizeRegistryHost,
  parseDockerConfig,
} from '../buildkit/docker-config.js';
import { execCredentialHelper } from '../buildkit/credential-helper.js';
import { CogError } from '../errors.js';
import { releaseLockFile, takeLockFile } from '../lock-file.js';
import { writeTarget } from '../write-target.js';
import { credentialSecrets, redactSecrets } from './redact.js';
import { isRecord } from '../is-record.js';

export interface CredentialStoreOptions {
  /** the directory holding config.json; default $DOCKER_CONFIG, else ~/.docker */
  readonly configDir?: string;
  /** environment for DOCKER_CONFIG/HOME and the helper's process (default process.env) */
  readonly env?: NodeJS.ProcessEnv;
  /** how long a credential helper may take, in ms (default 30 s) */
  readonly helperTimeoutMs?: number;
}

/** Where credentials went (or came from): a helper program, or the config file. */
export type CredentialLocation =
  { readonly kind: 'helper'; readonly program: string } | { readonly kind: 'file'; readonly file: string };

/** The raw config.json as a JSON object (unknown fields kept), and where it lives. */
interface RawConfig {
  readonly file: string;
  readonly json: Record<string, unknown>;
  /** the file as the reader reads it, `auths` left out: its credential helper settings */
  readonly helpers: DockerConfig;
}

function configFile(options: CredentialStoreOptions): string {
  return join(options.configDir ?? dockerConfigDir(options.env ?? process.env), 'config.json');
}

/** A config.json that is missing or empty. */
function emptyRawConfig(file: string): RawConfig {
  return { file, json: {}, helpers: parseDockerConfig('', file) };
}

/**
 * Reads config.json as an object; a missing or empty file is `{}`. Validates it like the reader does,
 * except for the entries of `auths`: a broken entry is kept as it is (or replaced, or removed, when it
 * is the host's), so it cannot stop a login or logout for any host.
 */
async function readRawConfig(file: string): Promise<RawConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return emptyRawConfig(file);
    throw await configReadError(file, code);
  }
  if (text.trim() === '') return emptyRawConfig(file);
  // the reader's checks (JSON, shapes, helpers), so a file we would misread is never rewritten
  const json = parseDockerConfigJson(text, file);
  if (json.auths !== undefined && json.auths !== null && !isRecord(json.auths)) parseDockerConfig(text, file); // throws, naming `auths`
  const helpers = parseDockerConfig(JSON.stringify({ ...json, auths: {} }), file);
  return { file, json, helpers };
}

/** The JSON object in config.json, with the reader's message when it is not one. */
function parseDockerConfigJson(text: string, file: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    parseDockerConfig(text, file); // throws the reader's message
  }
  if (!isRecord(json)) parseDockerConfig(text, file);
  return json as Record<string, unknown>;
}

/** How long a login waits for another cog process's change to config.json. */
const lockWaitMs = 10_000;

/**
 * Runs `change` on config.json under a lock file next to it, so that logins and logouts running at the
 * same time each see the others' entries (read, change and write are one step); the file is read
 * afresh inside the lock.
 */
async function changeConfig(
  file: string,
  change: (raw: RawConfig) => Record<string, unknown> | undefined,
): Promise<void> {
  const target = await writeTarget(file).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ELOOP') throw err;
    throw new CogError(`cannot write ${file}: too many levels of symbolic links`, {
      hint: 'fix the link, or point DOCKER_CONFIG at another directory',
    });
  });
  const lock = `${target}.lock`;
  const dirExists = await stat(dirname(target)).then(
    () => true,
    () => false,
  );
  // nothing to remove from a config that is not there: no directory is made for it
  if (!dirExists && change(emptyRawConfig(file)) === undefined) return;
  await mkdir(dirname(target), { recursive: true, mode: 0o700 }).catch(() => undefined);
  // no lock possible there (a read-only directory): the write says why
  const { held } = await takeLockFile(lock, {
    waitMs: lockWaitMs,
    busy: () =>
      new CogError(`${file} is locked by another cog login or logout (${lock})`, {
        hint: `wait for it to finish; if none is running, remove ${lock}`,
      }),
  });
  try {
    const next = change(await readRawConfig(file));
    if (next) await writeRawConfig(target, next);
  } finally {
    if (held) await releaseLockFile(lock);
  }
}

/**
 * Writes config.json atomically: a temp file (mode 0600) next to it, then rename. `target` is where a
 * symlinked config.json points (writeTarget), so the link stays and its target is replaced. The
 * directory is created (mode 0700) when missing.
 */
async function writeRawConfig(target: string, json: Record<string, unknown>): Promise<void> {
  const dir = dirname(target);
  const temp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(temp, `${JSON.stringify(json, null, '\t')}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(temp, 0o600); // the umask may have narrowed it; never widened
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    throw new CogError(`cannot write ${target} (${code ?? (err as Error).message})`, {
      hint:
        code === 'ENOSPC' || code === 'EDQUOT'
          ? 'the disk is full: free some space and log in again (the file was left as it was)'
          : 'check the permissions of the directory, or point DOCKER_CONFIG at another directory',
    });
  }
}

/** The `auths` keys that name `host` (exact key, or any alias that normalises to the same host). */
function authKeysFor(auths: Record<string, unknown>, host: string): string[] {
  const normal = normalizeRegistryHost(host);
  return Object.keys(auths).filter((key) => normalizeRegistryHost(key) === normal);
}

/** base64("user:secret"), the `auth` field docker writes. */
export function encodeAuthField(username: string, secret: string): string {
  return Buffer.from(`${username}:${secret}`, 'utf8').toString('base64');
}

/**
 * config.json with `auths[configKeyFor(host)]` set to the credentials (pure: returns a new object).
 * Other keys for the same host are dropped, so an old alias entry cannot shadow the new login.
 */
export function withAuthEntry(
  json: Readonly<Record<string, unknown>>,
  host: string,
  credentials: RegistryCredentials,
): Record<string, unknown> {
  const auths = isRecord(json.auths) ? { ...json.auths } : {};
  for (const key of authKeysFor(auths, host)) delete auths[key];
  auths[configKeyFor(host)] = { auth: encodeAuthField(credentials.username, credentials.secret) };
  return { ...json, auths };
}

/**
 * config.json without any `auths` entry for `host` (pure). `removed` says whether one held a secret
 * (an empty `{}` entry, which docker writes next to a helper login, does not count as a login).
 */
export function withoutAuthEntries(
  json: Readonly<Record<string, unknown>>,
  host: string,
): { readonly json: Record<string, unknown>; readonly changed: boolean; readonly removed: boolean } {
  if (!isRecord(json.auths)) return { json: { ...json }, changed: false, removed: false };
  const auths = { ...json.auths };
  const keys = authKeysFor(auths, host);
  const removed = keys.some((key) => {
    const entry = auths[key];
    return (
      isRecord(entry) &&
      ['auth', 'password', 'identitytoken', 'registrytoken'].some(
        (f) => typeof entry[f] === 'string' && entry[f] !== '',
      )
    );
  });
  for (const key of keys) delete auths[key];
  return { json: { ...json, auths }, changed: keys.length > 0, removed };
}

/** What helpers print when they have nothing for the server (docker-credential-helpers' texts vary). */
const notFoundPattern = /credentials not found|could not be found|not found in (native )?keychain/i;

interface HelperResult {
  readonly code: number | null;
  readonly output: string;
}

/** Runs `docker-credential-<helper> <action>` with `input` on stdin; rejects only when it cannot run. */
async function runHelper(
  helper: string,
  action: 'store' | 'erase',
  input: string,
  options: CredentialStoreOptions,
): Promise<HelperResult> {
  const run = await execCredentialHelper(helper, action, input, {
    env: options.env,
    timeoutMs: options.helperTimeoutMs,
  });
  if (run.timedOut) {
    throw new CogError(
      `credential helper ${run.program} gave no answer within ${(options.helperTimeoutMs ?? 30_000) / 1000} s`,
      {
        hint: `check that \`${run.program} ${action}\` works (a keychain may be locked)`,
      },
    );
  }
  return { code: run.code, output: [run.stdout, run.stderr].filter(Boolean).join('\n').slice(0, 4096) };
}

function helperFailure(
  helper: string,
  action: string,
  serverUrl: string,
  result: HelperResult,
  secrets: readonly string[],
) {
  const program = `docker-credential-${helper}`;
  const said = redactSecrets(result.output, secrets).slice(0, 300);
  return new CogError(
    `credential helper ${program} failed to ${action} credentials for ${serverUrl}: exit status ${result.code ?? '?'}${said ? `: ${said}` : ''}`,
    {
      hint: `check that ${program} works (a keychain may be locked), or remove "${helper}" from credsStore/credHelpers in config.json to store credentials in the file`,
    },
  );
}

/**
 * Stores credentials for `host`: through its credential helper when one is configured
 * (`credHelpers[host]` wins over `credsStore`), else in config.json `auths`. With a helper, any
 * plain-text entry left in `auths` for the host is removed, so the file holds no stale secret.
 */
export async function storeCredentials(
  host: string,
  credentials: RegistryCredentials,
  options: CredentialStoreOptions = {},
): Promise<CredentialLocation> {
  const file = configFile(options);
  const helper = helperFor((await readRawConfig(file)).helpers, host);
  const serverUrl = configKeyFor(host);
  if (helper) {
    const input = JSON.stringify({
      ServerURL: serverUrl,
      Username: credentials.username,
      Secret: credentials.secret,
    });
    const result = await runHelper(helper, 'store', input, options);
    if (result.code !== 0)
      throw helperFailure(helper, 'store', serverUrl, result, credentialSecrets(credentials));
    await changeConfig(file, (raw) => {
      const cleaned = withoutAuthEntries(raw.json, host);
      return cleaned.removed ? cleaned.json : undefined;
    });
    return { kind: 'helper', program: `docker-credential-${helper}` };
  }
  await changeConfig(file, (raw) => withAuthEntry(raw.json, host, credentials));
  return { kind: 'file', file };
}

/**
 * Removes the credentials for `host`: `erase` through its helper (if any) and every `auths` entry for
 * the host. Resolves with where something was removed; empty when there was no login to remove. The
 * file's entries go even when the helper fails (a secret must not stay behind in plain text); the
 * helper's failure is then thrown, saying so.
 */
export async function eraseCredentials(
  host: string,
  options: CredentialStoreOptions = {},
): Promise<CredentialLocation[]> {
  const file = configFile(options);
  const helper = helperFor((await readRawConfig(file)).helpers, host);
  const serverUrl = configKeyFor(host);
  const removed: CredentialLocation[] = [];
  let helperError: CogError | undefined;
  if (helper) {
    try {
      const result = await runHelper(helper, 'erase', serverUrl, options);
      if (result.code === 0) removed.push({ kind: 'helper', program: `docker-credential-${helper}` });
      else if (!notFoundPattern.test(result.output))
        helperError = helperFailure(helper, 'erase', serverUrl, result, []);
    } catch (err) {
      if (!(err instanceof CogError)) throw err;
      helperError = err;
    }
  }
  let fromFile = false;
  try {
    await changeConfig(file, (raw) => {
      const cleaned = withoutAuthEntries(raw.json, host);
      fromFile = cleaned.removed;
      return cleaned.changed ? cleaned.json : undefined;
    });
  } catch (err) {
    // both went wrong: say both
    if (helperError && err instanceof CogError)
      throw new CogError(`${helperError.message}; and ${err.message}`, { hint: err.hint ?? '', cause: err });
    throw err;
  }
  if (fromFile) removed.push({ kind: 'file', file });
  if (helperError)
    throw new CogError(
      `${helperError.message}${fromFile ? `; the entries for ${host} in ${file} were removed` : ''}`,
      {
        hint: `the credentials may still be in the helper's keychain: erase them there, or fix the helper and run \`cog logout ${host}\` again`,
        cause: helperError,
      },
    );
  return removed;
}
