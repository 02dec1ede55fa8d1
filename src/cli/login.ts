/**
 * `cog login [REGISTRY]` and `cog logout [REGISTRY]`. The registry defaults to COG_REGISTRY_HOST, else
 * r8.im. r8.im (or any host with COG_REPLICATE_LOGIN=1) uses Replicate's CLI-token flow; other
 * registries take a username and password, checked against the registry before anything is stored.
 * Credentials are stored where docker keeps them (credential helper, else config.json `auths`) and are
 * never printed.
 */
import { spawn } from 'node:child_process';
import { normalizeRegistryHost } from '../buildkit/docker-config.js';
import { CogError } from '../errors.js';
import { type CredentialLocation, eraseCredentials, storeCredentials } from '../registry/credential-store.js';
import {
  defaultRegistryHost,
  displayTokenUrl,
  usesReplicateLogin,
  verifyReplicateToken,
} from '../registry/replicate-auth.js';
import { verifyRegistryLogin } from '../registry/verify-login.js';
import { isRegistryHost } from '../registry/reference.js';
import { type PromptInput, isInteractive, readAll, readHidden, readLine } from './prompt.js';

export interface LoginIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: PromptInput;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

export interface LoginOptions {
  /** REGISTRY (or `--registry`) */
  readonly registry?: string | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly passwordStdin?: boolean | undefined;
  readonly tokenStdin?: boolean | undefined;
}

/** The registry a command is about: REGISTRY (or --registry), else COG_REGISTRY_HOST, else r8.im. */
export function resolveRegistryHost(given: string | undefined, env: NodeJS.ProcessEnv): string {
  const fromEnv = !given?.trim() && Boolean(env.COG_REGISTRY_HOST?.trim());
  given = given?.trim() || defaultRegistryHost(env);
  const host = normalizeRegistryHost(given);
  if (!host || !isRegistryHost(host))
    throw new CogError(
      `${fromEnv ? 'COG_REGISTRY_HOST=' : ''}${JSON.stringify(given)} is not a registry address`,
      {
        hint: /^[0-9a-f:]*:[0-9a-f:]*$/i.test(host ?? '')
          ? `write an IPv6 address in brackets, e.g. \`cog login [${host}]:5000\``
          : 'name a registry as host[:port] (a port from 1 to 65535), e.g. `cog login registry.example.com`',
      },
    );
  return host;
}

function describeLocation(where: CredentialLocation): string {
  return where.kind === 'helper' ? `the credential helper ${where.program}` : where.file;
}

/** `--password-stdin` input: docker's rule, only the trailing line break goes. */
const stripLineBreak = (text: string) => text.replace(/\r?\n$/, '');

function noTerminal(what: string, instead: string): CogError {
  return new CogError(`cannot ask for ${what}: stdin is not a terminal`, { hint: instead });
}

/** Opens `url` in a browser, best effort and silently (the URL is printed anyway); COG_NO_BROWSER=1 skips it. */
function openBrowser(url: string, env: NodeJS.ProcessEnv): void {
  if (env.COG_NO_BROWSER === '1') return;
  const [program, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['rundll32', ['url.dll,FileProtocolHandler', url]]
        : ['xdg-open', [url]];
  try {
    const child = spawn(program, args, { env, stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no browser: the user opens the printed URL
  }
}

async function afterStore(host: string, username: string, where: CredentialLocation, io: LoginIo) {
  if (where.kind === 'file')
    io.stderr.write(
      `WARNING: the credentials are stored unencrypted in ${where.file}; configure a credential helper ("credsStore" in that file) to keep them in a keychain\n`,
    );
  io.stderr.write(`Logged in to ${host} as ${username}; credentials stored in ${describeLocation(where)}\n`);
  io.stdout.write('Login Succeeded\n');
}

/** Replicate's flow: show the token page, read the CLI token, verify it, store username + token. */
async function replicateLogin(host: string, options: LoginOptions, io: LoginIo): Promise<void> {
  const env = io.env;
  const fromStdin = options.tokenStdin === true || options.passwordStdin === true;
  const stdinFlag = options.tokenStdin === true ? '--token-stdin' : '--password-stdin';
  if (fromStdin && options.password !== undefined)
    throw new CogError(`--password and ${stdinFlag} exclude each other`, {
      hint: `give the token one way; ${stdinFlag} keeps it out of the process list`,
    });
  let token: string;
  if (fromStdin) {
    // still asks the registry first, so a non-Replicate host fails with its own message
    await displayTokenUrl(host, { env });
    token = (await readAll(io.stdin, stdinFlag)).trim();
  } else if (options.password !== undefined) {
    io.stderr.write('WARNING: a token on the command line is visible to other users; use --token-stdin\n');
    await displayTokenUrl(host, { env });
    token = options.password.trim();
  } else {
    if (!isInteractive(io.stdin))
      throw noTerminal('a token', `pipe the CLI token in: \`cog login --token-stdin ${host} < token-file\``);
    const url = await displayTokenUrl(host, { env });
    io.stderr.write(
      `This logs you in to ${host}, Replicate's registry; you need a Replicate account.\n\n` +
        'Press Enter to open the page that shows your CLI token in a browser, then paste the token here.\n',
    );
    await readLine(io.stdin, io.stderr, '');
    io.stderr.write(`\nYour CLI token is on this page (open it if no browser started):\n\n    ${url}\n\n`);
    openBrowser(url, env);
    token = (await readHidden(io.stdin, io.stderr, 'CLI token: ')).trim();
  }
  if (!token)
    throw new CogError('no token was given', {
      hint: fromStdin ? 'stdin was empty; pipe the CLI token in' : 'paste the CLI token when asked',
    });
  const username = await verifyReplicateToken(host, token, { env });
  if (username.includes(':'))
    throw new CogError(
      `${host} says the token belongs to ${JSON.stringify(username)}, which contains ':' and cannot be stored as a login`,
      {
        hint: "check that the host is Replicate's registry; nothing was stored",
      },
    );
  if (options.username?.trim() && options.username.trim() !== username)
    io.stderr.write(
      `WARNING: --username ${options.username.trim()} is not used: ${host}'s token belongs to ${username}\n`,
    );
  const where = await storeCredentials(host, { username, secret: token }, { env });
  await afterStore(host, username, where, io);
}

/** The username/password flow for any other registry. */
async function passwordLogin(host: string, options: LoginOptions, io: LoginIo): Promise<void> {
  const fromStdin = options.passwordStdin === true || options.tokenStdin === true;
  const pipeHint = `run \`cog login -u USER --password-stdin ${host}\` with the password on stdin`;
  if (fromStdin && options.password !== undefined)
    throw new CogError('--password and --password-stdin exclude each other', {
      hint: 'give the password one way; --password-stdin keeps it out of the process list',
    });
  let username = options.username?.trim();
  if (!username) {
    if (fromStdin)
      throw new CogError('--password-stdin needs a username', { hint: `add -u USER: ${pipeHint}` });
    if (!isInteractive(io.stdin)) throw noTerminal('a username', pipeHint);
    username = (await readLine(io.stdin, io.stderr, 'Username: ')).trim();
  }
  if (!username) throw new CogError('no username was given', { hint: pipeHint });
  // Basic authentication joins user and password with ':', so the first ':' ends the username
  if (username.includes(':'))
    throw new CogError(
      `the username ${JSON.stringify(username)} contains ':', which no registry login can carry`,
      {
        hint: 'check the username; nothing was stored',
      },
    );
  if (options.password === '') throw new CogError('--password is empty', { hint: pipeHint });

  let password: string;
  if (fromStdin)
    password = stripLineBreak(
      await readAll(io.stdin, options.passwordStdin === true ? '--password-stdin' : '--token-stdin'),
    );
  else if (options.password !== undefined) {
    io.stderr.write(
      'WARNING: a password on the command line is visible to other users; use --password-stdin\n',
    );
    password = options.password;
  } else {
    if (!isInteractive(io.stdin)) throw noTerminal('a password', pipeHint);
    password = await readHidden(io.stdin, io.stderr, 'Password: ');
  }
  if (!password)
    throw new CogError('no password was given', {
      hint: fromStdin ? `stdin was empty; ${pipeHint}` : 'type the password when asked',
    });

  const credentials = { username, secret: password };
  await verifyRegistryLogin(host, credentials, { env: io.env });
  const where = await storeCredentials(host, credentials, { env: io.env });
  await afterStore(host, username, where, io);
}

export async function login(options: LoginOptions, io: LoginIo): Promise<void> {
  const host = resolveRegistryHost(options.registry, io.env);
  if (usesReplicateLogin(host, io.env)) await replicateLogin(host, options, io);
  else await passwordLogin(host, options, io);
}

export async function logout(options: Pick<LoginOptions, 'registry'>, io: LoginIo): Promise<void> {
  const host = resolveRegistryHost(options.registry, io.env);
  const removed = await eraseCredentials(host, { env: io.env });
  if (removed.length === 0) {
    io.stdout.write(`Not logged in to ${host}\n`);
    return;
  }
  io.stderr.write(
    `Removed the credentials for ${host} from ${removed.map(describeLocation).join(' and ')}\n`,
  );
  io.stdout.write(`Logged out of ${host}\n`);
}

/** REGISTRY and --registry both given land in one array: only one registry is allowed. */
