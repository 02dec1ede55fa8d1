/**
 * Registry credentials the way the docker CLI (and so buildx) finds them: `config.json` in $DOCKER_CONFIG
 * or ~/.docker, its `auths` entries, and credential helpers (`credHelpers` per registry, else
 * `credsStore`), plus the DOCKER_AUTH_CONFIG variable. Nothing here logs or prints a secret; errors name
 * the file, field, helper and registry, never a value.
 */
import { execCredentialHelper } from './credential-helper.js';
import { lstat, readFile, realpath } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CogError } from '../errors.js';
import { isRecord } from '../is-record.js';

/** The `auths` key `docker login` writes for Docker Hub. */
export const dockerHubConfigKey = 'https://index.docker.io/v1/';
/** The one name every Docker Hub alias normalises to. */
export const dockerHubHost = 'docker.io';
const dockerHubAliases = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
]);

/** What the session's Auth service answers: `username` is empty when `secret` is an identity token. */
export interface RegistryCredentials {
  readonly username: string;
  readonly secret: string;
}

/** One `auths` entry, decoded. */
export interface AuthEntry {
  readonly username?: string;
  readonly password?: string;
  readonly identityToken?: string;
}

export interface DockerConfig {
  /** the file it was read from; undefined when there is none */
  readonly file: string | undefined;
  /** `auths`, keyed as written (host, or URL like https://index.docker.io/v1/), in file order */
  readonly auths: ReadonlyMap<string, AuthEntry>;
  /** `credHelpers`: registry -> helper suffix (the program is docker-credential-<suffix>) */
  readonly credHelpers: ReadonlyMap<string, string>;
  /** `credsStore`: the default helper suffix */
  readonly credsStore: string | undefined;
}

export interface DockerConfigOptions {
  /** the directory holding config.json; default $DOCKER_CONFIG, else ~/.docker */
  readonly configDir?: string;
  /** the environment to read DOCKER_CONFIG, HOME and DOCKER_AUTH_CONFIG from and run helpers with */
  readonly env?: NodeJS.ProcessEnv;
}

export interface CredentialOptions extends DockerConfigOptions {
  /** credentials given directly (e.g. on the command line), keyed by host or URL; they win over the config */
  readonly extra?: Readonly<Record<string, { readonly username: string; readonly password: string }>>;
  /** how long a credential helper may take, in ms (default 30 s; the daemon gives up after 60 s) */
  readonly helperTimeoutMs?: number;
}

export const emptyDockerConfig: DockerConfig = {
  file: undefined,
  auths: new Map(),
  credHelpers: new Map(),
  credsStore: undefined,
};

/** $DOCKER_CONFIG, else ~/.docker (HOME from `env`, then the OS). */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONFIG) return env.DOCKER_CONFIG;
  return join(env.HOME || homedir(), '.docker');
}

/**
 * A registry host as written in a config key, an image reference's domain or a daemon request, reduced
 * to `host[:port]`, lower-case, with scheme and path stripped; every Docker Hub alias becomes `docker.io`.
 */
export function normalizeRegistryHost(hostOrUrl: string): string {
  let host = hostOrUrl.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = host.indexOf('/');
  if (slash >= 0) host = host.slice(0, slash);
  host = host.toLowerCase();
  return dockerHubAliases.has(host) ? dockerHubHost : host;
}

/** The key docker uses for a registry in config.json and when asking a helper: the Hub URL or the host. */
export function configKeyFor(host: string): string {
  const normal = normalizeRegistryHost(host);
  return normal === dockerHubHost ? dockerHubConfigKey : normal;
}

/** The hint for a field of config.json (or of DOCKER_AUTH_CONFIG) that cannot be read. */
function configFieldHint(file: string, field: string): string {
  if (file === 'DOCKER_AUTH_CONFIG') return `fix or remove ${field} in DOCKER_AUTH_CONFIG, or unset it`;
  if (field === 'the top level')
    return `make ${file} one JSON object (\`{}\` at the least) by hand, or remove it (\`cog login\` and \`cog logout\` stop at it too), or point DOCKER_CONFIG at another directory`;
  // one registry's entry: login and logout replace or remove it (credential-store.ts keeps the others);
  // any other field stops them as it stops this reader, so only an edit mends it
  const byLogin = field.startsWith('auths[')
    ? ' (`cog login` or `cog logout` for that registry replaces or removes it)'
    : ' by hand (`cog login` and `cog logout` stop at it too)';
  return `fix or remove ${field} in ${file}${byLogin}, or point DOCKER_CONFIG at another directory`;
}

function configError(file: string, field: string, problem: string): CogError {
  return new CogError(`${file}: ${field} ${problem}`, { hint: configFieldHint(file, field) });
}

/** Decodes an `auth` field: base64 of "user:password". */
export function decodeAuthField(value: string, file: string, field: string): AuthEntry {
  const compact = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1)
    throw configError(file, field, 'is not valid base64');
  const decoded = Buffer.from(compact, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw configError(file, field, 'does not decode to "username:password"');
  return {
    username: decoded.slice(0, colon),
    password: decoded.slice(colon + 1).replace(/^\0+|\0+$/g, ''),
  };
}

function optionalString(entry: Record<string, unknown>, name: string, file: string, field: string) {
  const value = entry[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw configError(file, `${field}.${name}`, 'is not a string');
  return value;
}

/** Parses config.json text; `file` names it in errors (a path, or e.g. "DOCKER_AUTH_CONFIG"). */
export function parseDockerConfig(text: string, file: string): DockerConfig {
  if (text.trim() === '') return { ...emptyDockerConfig, file };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CogError(`${file} is not valid JSON: ${(err as Error).message}`, {
      hint: `fix the JSON in ${file}, or point DOCKER_CONFIG at another directory`,
    });
  }
  if (!isRecord(json)) throw configError(file, 'the top level', 'is not a JSON object');

  const auths = new Map<string, AuthEntry>();
  if (json.auths !== undefined && json.auths !== null) {
    if (!isRecord(json.auths)) throw configError(file, 'auths', 'is not an object');
    for (const [key, raw] of Object.entries(json.auths)) {
      const field = `auths[${JSON.stringify(key)}]`;
      if (!isRecord(raw)) throw configError(file, field, 'is not an object');
      const auth = optionalString(raw, 'auth', file, field);
      const identityToken = optionalString(raw, 'identitytoken', file, field);
      const fromAuth = auth ? decodeAuthField(auth, file, `${field}.auth`) : undefined;
      const username = fromAuth?.username ?? optionalString(raw, 'username', file, field);
      const password = fromAuth?.password ?? optionalString(raw, 'password', file, field);
      auths.set(key, {
        ...(username ? { username } : {}),
        ...(password ? { password } : {}),
        ...(identityToken ? { identityToken } : {}),
      });
    }
  }

  const credHelpers = new Map<string, string>();
  if (json.credHelpers !== undefined && json.credHelpers !== null) {
    if (!isRecord(json.credHelpers)) throw configError(file, 'credHelpers', 'is not an object');
    for (const [key, helper] of Object.entries(json.credHelpers)) {
      if (typeof helper !== 'string')
        throw configError(file, `credHelpers[${JSON.stringify(key)}]`, 'is not a string');
      credHelpers.set(key, helper);
    }
  }

  const credsStore = json.credsStore;
  if (credsStore !== undefined && credsStore !== null && typeof credsStore !== 'string')
    throw configError(file, 'credsStore', 'is not a string');

  return { file, auths, credHelpers, credsStore: credsStore || undefined };
}

/** Reads `<configDir>/config.json`; a missing file is an empty config. */
export async function loadDockerConfig(options: DockerConfigOptions = {}): Promise<DockerConfig> {
  const file = join(options.configDir ?? dockerConfigDir(options.env ?? process.env), 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return emptyDockerConfig;
    throw await configReadError(file, code);
  }
  return parseDockerConfig(text, file);
}

/**
 * The error for a config.json that is there but cannot be read (`code` from the read): what is wrong
 * with which path. Only a link loop costs a look at the file system, to say where the loop is.
 */
export async function configReadError(file: string, code: string | undefined): Promise<CogError> {
  const elsewhere = 'or point DOCKER_CONFIG at another directory';
  if (code === 'EISDIR')
    return new CogError(`cannot read ${file}: it is a directory`, {
      hint: `move ${file} away, ${elsewhere}`,
    });
  if (code === 'ELOOP') {
    // the file's own links loop when its directory resolves; else the loop is on the directory's path
    const dir = dirname(file);
    const dirResolves = await realpath(dir).then(
      () => true,
      () => false,
    );
    const fileIsLink = await lstat(file).then(
      (st) => st.isSymbolicLink(),
      () => false,
    );
    if (dirResolves && fileIsLink)
      return new CogError(
        `cannot read ${file}: it is a symbolic link whose links lead round in a loop (ELOOP)`,
        {
          hint: `point the link ${file} at a real file, or remove it, ${elsewhere}`,
        },
      );
    return new CogError(
      `cannot read ${file}: its directory ${dir} is reached through symbolic links that lead round in a loop (ELOOP)`,
      { hint: `point the links on the path to ${dir} at a real directory, or remove them, ${elsewhere}` },
    );
  }
  return new CogError(`cannot read ${file} (${code ?? 'error'})`, {
    hint: `check its permissions, ${elsewhere}`,
  });
}

/** The entry for `host` in a keyed map: the exact key first, else the first key that normalises to it. */
function lookup<T>(map: ReadonlyMap<string, T>, host: string): T | undefined {
  const key = configKeyFor(host);
  const exact = map.get(key) ?? map.get(host);
  if (exact !== undefined) return exact;
  const normal = normalizeRegistryHost(host);
  for (const [k, v] of map) if (normalizeRegistryHost(k) === normal) return v;
  return undefined;
}

function fromEntry(entry: AuthEntry | undefined): RegistryCredentials | undefined {
  if (!entry) return undefined;
  if (entry.identityToken) return { username: '', secret: entry.identityToken };
  if (entry.username || entry.password)
    return { username: entry.username ?? '', secret: entry.password ?? '' };
  return undefined;
}

/** The helper (suffix) that serves `host`: its `credHelpers` entry, else `credsStore`. */
export function helperFor(config: DockerConfig, host: string): string | undefined {
  return lookup(config.credHelpers, host) ?? config.credsStore;
}

/** What a helper prints when it has nothing for the server (docker-credential-helpers' standard text). */
const notFoundMessage = 'credentials not found in native keychain';
/** The username a helper returns when the secret is an identity token. */
const tokenUsername = '<token>';

/**
 * Runs `docker-credential-<helper> get` with `serverUrl` on stdin. Resolves undefined when the helper
 * says it has no credentials for it; rejects with a CogError naming the helper and server otherwise.
 */
export function runCredentialHelper(
  helper: string,
  serverUrl: string,
  options: { readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number } = {},
): Promise<RegistryCredentials | undefined> {
  const program = `docker-credential-${helper}`;
  const fail = (problem: string, hint?: string) =>
    new CogError(`credential helper ${program} failed for ${serverUrl}: ${problem}`, {
      hint: hint ?? `check that \`echo ${serverUrl} | ${program} get\` works, or remove it from config.json`,
    });
  return execCredentialHelper(helper, 'get', serverUrl, options).then(
    (run) => {
      if (run.code !== 0) {
        if (run.stdout === notFoundMessage || run.stderr === notFoundMessage) return undefined;
        // what it said: the first line of its error output, or of its answer when that is not JSON
        // (which could hold the secret); a JSON secret is masked all the same
        const firstLine = (text: string) => text.split('\n', 1)[0] ?? '';
        const said = (firstLine(run.stderr) || (run.stdout.includes('{') ? '' : firstLine(run.stdout)))
          .replace(/("Secret"\s*:\s*)"(?:[^"\\]|\\.)*"/g, '$1"***"')
          .slice(0, 300);
        throw fail(
          run.timedOut
            ? `no answer within ${(options.timeoutMs ?? 30_000) / 1000} s`
            : run.signal
              ? `killed by ${run.signal}`
              : `exit status ${run.code ?? '?'}${said ? `: ${said}` : ''}`,
        );
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(run.stdout);
      } catch {
        throw fail('its output is not JSON');
      }
      if (!isRecord(parsed) || typeof parsed.Secret !== 'string')
        throw fail('its output has no "Secret" string');
      const username = typeof parsed.Username === 'string' ? parsed.Username : '';
      if (parsed.Secret === '' && username === '') return undefined;
      return username === tokenUsername
        ? { username: '', secret: parsed.Secret }
        : { username, secret: parsed.Secret };
    },
    (err: unknown) => {
      // not installed, or could not start: say which server it was asked about
      throw err instanceof CogError && err.message.includes('not installed')
        ? fail(`${program} is not installed (not found on PATH)`, err.hint)
        : err;
    },
  );
}

/**
 * Finds credentials for a registry host (as the daemon names it: `127.0.0.1:5000`, `registry-1.docker.io`):
 * `extra` first, then DOCKER_AUTH_CONFIG, then the helper configured for the host, else config.json
 * `auths`. Undefined means anonymous.
 */
export async function findCredentials(
  config: DockerConfig,
  host: string,
  options: CredentialOptions = {},
): Promise<RegistryCredentials | undefined> {
  const extraMap = new Map(Object.entries(options.extra ?? {}));
  const extra = lookup(extraMap, host);
  if (extra) return { username: extra.username, secret: extra.password };

  const env = options.env ?? process.env;
  if (env.DOCKER_AUTH_CONFIG) {
    const fromEnv = fromEntry(
      lookup(parseDockerConfig(env.DOCKER_AUTH_CONFIG, 'DOCKER_AUTH_CONFIG').auths, host),
    );
    if (fromEnv) return fromEnv;
  }

  const helper = helperFor(config, host);
  if (helper)
    return runCredentialHelper(helper, configKeyFor(host), {
      env,
      ...(options.helperTimeoutMs === undefined ? {} : { timeoutMs: options.helperTimeoutMs }),
    });
  return fromEntry(lookup(config.auths, host));
}

/**
 * A lookup function over one config: the file is read once, on first use; answers are cached per host
 * (failures are not, so a fixed helper is picked up on the next request).
 */
export function credentialResolver(
  options: CredentialOptions = {},
): (host: string) => Promise<RegistryCredentials | undefined> {
  let config: Promise<DockerConfig> | undefined;
  const cache = new Map<string, Promise<RegistryCredentials | undefined>>();
  return (host: string) => {
    const key = normalizeRegistryHost(host);
    let answer = cache.get(key);
    if (!answer) {
      config ??= loadDockerConfig(options).catch((err: unknown) => {
        config = undefined;
        throw err;
      });
      const pending = config.then((c) => findCredentials(c, host, options));
      answer = pending;
      cache.set(key, pending);
      pending.catch(() => {
        if (cache.get(key) === pending) cache.delete(key);
      });
    }
    return answer;
  };
}
