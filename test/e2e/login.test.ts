// `cog login` / `cog logout` through the real CLI: against the test bed's htpasswd registry (a push is
// refused before the login and accepted after it), through fake credential helpers, and the r8.im
// token flow against a fake Replicate server on loopback (COG_REPLICATE_LOGIN=1).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RegistryClient } from '../../src/registry/client.js';
import { dockerKeychain } from '../../src/registry/keychain.js';
import { exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { type Testbed, ensureTestbed, repoRoot } from '../support/testbed.js';

const cog = `${repoRoot}bin/cog`;
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;

before(async () => {
  tb = await ensureTestbed();
});

/** The test bed's environment without any ambient credentials, with DOCKER_CONFIG = `configDir`. */
function envFor(configDir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...tb.env, DOCKER_CONFIG: configDir, ...extra };
  for (const name of [
    'COG_REGISTRY_USERNAME',
    'COG_REGISTRY_PASSWORD',
    'DOCKER_AUTH_CONFIG',
    'COG_REGISTRY_HOST',
    'COG_REPLICATE_LOGIN',
  ])
    if (!(name in extra)) delete env[name];
  return env;
}

async function configDirWith(config: unknown | undefined, mode = 0o644): Promise<string> {
  const dir = await tempDir('cogts-login-cfg-');
  if (config !== undefined) {
    await writeFile(join(dir, 'config.json'), JSON.stringify(config), { mode });
    await chmod(join(dir, 'config.json'), mode);
  }
  return dir;
}

async function readConfig(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
}

const decode = (auth: unknown) => Buffer.from(String(auth), 'base64').toString('utf8');

function assertNoSecret(result: { stdout: string; stderr: string }, ...secrets: string[]) {
  for (const secret of secrets) {
    for (const form of [secret, Buffer.from(secret).toString('base64')]) {
      assert.ok(!result.stdout.includes(form), `stdout shows a secret:\n${result.stdout}`);
      assert.ok(!result.stderr.includes(form), `stderr shows a secret:\n${result.stderr}`);
    }
  }
}

/** An upload the registry let us start (201 done at once, or 202 a session opened). */
const accepted = (status: number) => status === 201 || status === 202;

/** Uploads a small blob to the auth registry with credentials from env's DOCKER_CONFIG; resolves the status. */
async function pushBlob(env: NodeJS.ProcessEnv): Promise<number> {
  const client = new RegistryClient({
    keychain: dockerKeychain({ env }),
    env,
    retry: { attempts: 1, initialDelayMs: 1, factor: 1, maxDelayMs: 1, jitter: 0, maxRetryAfterMs: 1 },
  });
  const body = randomBytes(64);
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  try {
    const res = await client.send({
      registry: tb.authRegistry,
      method: 'POST',
      url: `/v2/cogts-login/probe/blobs/uploads/?digest=${digest}`,
      headers: { 'content-type': 'application/octet-stream' },
      body,
      scopes: ['repository:cogts-login/probe:pull,push'],
    });
    await res.body.dump();
    return res.statusCode;
  } finally {
    await client.close();
  }
}

/**
 * A fake docker-credential-<name> on a PATH dir: `store`/`erase` record their stdin in
 * <dir>/<name>.<action>; `get` answers from the last store. `fail` makes `store` fail, echoing stdin.
 */
async function fakeHelper(bin: string, name: string, options: { fail?: boolean } = {}): Promise<void> {
  const record = join(bin, name);
  await writeFile(
    join(bin, `docker-credential-${name}`),
    [
      '#!/bin/sh',
      'input=$(cat)',
      `printf '%s' "$input" > "${record}.$1"`,
      options.fail ? 'echo "keychain locked: $input" >&2; exit 1' : '',
      `if [ "$1" = get ]; then if [ -f "${record}.store" ]; then cat "${record}.store"; exit 0; fi; echo "credentials not found in native keychain"; exit 1; fi`,
      `if [ "$1" = erase ] && [ ! -f "${record}.store" ]; then echo "credentials not found in native keychain"; exit 1; fi`,
      `if [ "$1" = erase ]; then rm -f "${record}.store"; fi`,
      'exit 0',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

describe('cog login against the htpasswd registry', () => {
  test(
    'a push is refused without credentials and accepted after `cog login --password-stdin`',
    { timeout: 120_000 },
    async () => {
      const dir = await configDirWith({
        psFormat: 'table {{.ID}}',
        auths: { 'other.example:5000': { auth: Buffer.from('someone:else').toString('base64') } },
        credHelpers: { 'helper.example': 'nothing' },
      });
      assert.equal(await pushBlob(envFor(dir)), 401);

      const result = await exec(cog, ['login', '-u', tb.authUser, '--password-stdin', tb.authRegistry], {
        env: envFor(dir),
        input: `${tb.authPassword}\n`,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^Login Succeeded$/m);
      assert.match(result.stderr, /stored unencrypted/);
      assertNoSecret(result, tb.authPassword);

      const file = join(dir, 'config.json');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const config = await readConfig(dir);
      assert.equal(config.psFormat, 'table {{.ID}}');
      assert.deepEqual(config.credHelpers, { 'helper.example': 'nothing' });
      const auths = config.auths as Record<string, { auth?: string }>;
      assert.equal(decode(auths['other.example:5000']?.auth), 'someone:else');
      assert.equal(decode(auths[tb.authRegistry]?.auth), `${tb.authUser}:${tb.authPassword}`);

      assert.ok(accepted(await pushBlob(envFor(dir))));
    },
  );

  test('a missing DOCKER_CONFIG directory is created', { timeout: 60_000 }, async () => {
    const dir = join(await tempDir('cogts-login-new-'), 'nested', 'docker');
    const result = await exec(
      cog,
      ['login', '--username', tb.authUser, '--password-stdin', '--registry', tb.authRegistry],
      { env: envFor(dir), input: tb.authPassword },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const auths = (await readConfig(dir)).auths as Record<string, { auth?: string }>;
    assert.equal(decode(auths[tb.authRegistry]?.auth), `${tb.authUser}:${tb.authPassword}`);
  });

  test('a wrong password fails, stores nothing and is never shown', { timeout: 60_000 }, async () => {
    const before = { auths: { 'other.example:5000': { auth: 'c29tZW9uZTplbHNl' } } };
    const dir = await configDirWith(before);
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const result = await exec(cog, ['login', '-u', tb.authUser, '--password-stdin', tb.authRegistry], {
      env: envFor(dir),
      input: `${wrong}\n`,
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /rejected the credentials/);
    assert.match(result.stderr, /nothing was stored/);
    assert.doesNotMatch(result.stdout, /Login Succeeded/);
    assertNoSecret(result, wrong);
    assert.deepEqual(await readConfig(dir), before);
  });

  test('--password-stdin without a username, and no terminal, fail with a hint', async () => {
    const dir = await configDirWith(undefined);
    const noUser = await exec(cog, ['login', '--password-stdin', tb.authRegistry], {
      env: envFor(dir),
      input: 'x',
    });
    assert.equal(noUser.code, 1);
    assert.match(noUser.stderr, /needs a username/);
    const noTty = await exec(cog, ['login', tb.authRegistry], { env: envFor(dir) });
    assert.equal(noTty.code, 1);
    assert.match(noTty.stderr, /stdin is not a terminal/);
    assert.match(noTty.stderr, /--password-stdin/);
    assert.equal(await exists(join(dir, 'config.json')), false);
  });
});

describe('cog login and logout with credential helpers', () => {
  test(
    'credsStore receives the credentials as JSON; a stale plain-text entry is removed; logout erases',
    { timeout: 60_000 },
    async () => {
      const bin = await tempDir('cogts-login-bin-');
      await fakeHelper(bin, 'cogtsstore');
      const dir = await configDirWith({
        credsStore: 'cogtsstore',
        auths: { [tb.authRegistry]: { auth: Buffer.from('old:stale-secret').toString('base64') } },
      });
      const env = envFor(dir, { PATH: `${bin}${delimiter}${tb.env.PATH ?? ''}` });
      const result = await exec(cog, ['login', '-u', tb.authUser, '--password-stdin', tb.authRegistry], {
        env,
        input: tb.authPassword,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /docker-credential-cogtsstore/);
      assert.doesNotMatch(result.stderr, /unencrypted/);
      assertNoSecret(result, tb.authPassword);
      assert.deepEqual(JSON.parse(await readFile(join(bin, 'cogtsstore.store'), 'utf8')), {
        ServerURL: tb.authRegistry,
        Username: tb.authUser,
        Secret: tb.authPassword,
      });
      const text = await readFile(join(dir, 'config.json'), 'utf8');
      assert.ok(!text.includes(tb.authPassword) && !text.includes('c3RhbGU'), text);
      assert.deepEqual(JSON.parse(text), { credsStore: 'cogtsstore', auths: {} });

      const out = await exec(cog, ['logout', tb.authRegistry], { env });
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, new RegExp(`Logged out of ${tb.authRegistry}`));
      assert.equal(await readFile(join(bin, 'cogtsstore.erase'), 'utf8'), tb.authRegistry);
      assert.equal(await exists(join(bin, 'cogtsstore.store')), false);

      const again = await exec(cog, ['logout', tb.authRegistry], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /Not logged in to/);
    },
  );

  test('credHelpers for the host wins over credsStore', { timeout: 60_000 }, async () => {
    const bin = await tempDir('cogts-login-bin-');
    await fakeHelper(bin, 'cogtsdefault');
    await fakeHelper(bin, 'cogtsper');
    const dir = await configDirWith({
      credsStore: 'cogtsdefault',
      credHelpers: { [tb.authRegistry]: 'cogtsper' },
    });
    const env = envFor(dir, { PATH: `${bin}${delimiter}${tb.env.PATH ?? ''}` });
    const result = await exec(cog, ['login', '-u', tb.authUser, '--password-stdin', tb.authRegistry], {
      env,
      input: tb.authPassword,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(JSON.parse(await readFile(join(bin, 'cogtsper.store'), 'utf8')).Secret, tb.authPassword);
    assert.equal(await exists(join(bin, 'cogtsdefault.store')), false);
    // and the registry accepts what the per-host helper now answers
    assert.ok(accepted(await pushBlob(env)));
    const logout = await exec(cog, ['logout', tb.authRegistry], { env });
    assert.equal(logout.code, 0);
    assert.equal(await exists(join(bin, 'cogtsdefault.erase')), false);
    assert.equal(await readFile(join(bin, 'cogtsper.erase'), 'utf8'), tb.authRegistry);
  });

  test('a failing helper is reported with the secret redacted', { timeout: 60_000 }, async () => {
    const bin = await tempDir('cogts-login-bin-');
    await fakeHelper(bin, 'cogtsfail', { fail: true });
    const dir = await configDirWith({ credsStore: 'cogtsfail' });
    const env = envFor(dir, { PATH: `${bin}${delimiter}${tb.env.PATH ?? ''}` });
    const result = await exec(cog, ['login', '-u', tb.authUser, '--password-stdin', tb.authRegistry], {
      env,
      input: tb.authPassword,
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /docker-credential-cogtsfail failed to store/);
    assert.match(result.stderr, /keychain locked/);
    assertNoSecret(result, tb.authPassword);
    assert.deepEqual(await readConfig(dir), { credsStore: 'cogtsfail' });
  });

  test('logout SERVER after -- is read; SERVER and --registry naming two registries is refused', async () => {
    const dir = await configDirWith({
      auths: { '127.0.0.1:5998': { auth: 'YTpi' }, 'keep.example': { auth: 'Yzpk' } },
    });
    const two = await exec(cog, ['logout', '127.0.0.1:5998', '--registry', 'keep.example'], {
      env: envFor(dir),
    });
    assert.equal(two.code, 1, two.stderr);
    assert.match(two.stderr, /^cog: error: name one registry$/m);
    assert.equal(Object.keys((await readConfig(dir)).auths as object).length, 2, 'nothing was removed');
    const dashed = await exec(cog, ['logout', '--', '127.0.0.1:5998'], { env: envFor(dir) });
    assert.equal(dashed.code, 0, dashed.stderr);
    assert.match(dashed.stdout, /Logged out of 127\.0\.0\.1:5998/);
    assert.deepEqual(await readConfig(dir), { auths: { 'keep.example': { auth: 'Yzpk' } } });
  });

  test('logout removes every auths entry for the host and keeps the rest', async () => {
    const dir = await configDirWith(
      {
        auths: {
          '127.0.0.1:5999': { auth: 'YTpi' },
          'http://127.0.0.1:5999/v2/': { auth: 'YTpi' },
          'keep.example': { auth: 'Yzpk' },
        },
        experimental: 'enabled',
      },
      0o600,
    );
    const result = await exec(cog, ['logout', '127.0.0.1:5999'], { env: envFor(dir) });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Logged out of 127\.0\.0\.1:5999/);
    assert.deepEqual(await readConfig(dir), {
      auths: { 'keep.example': { auth: 'Yzpk' } },
      experimental: 'enabled',
    });
    assert.equal((await stat(join(dir, 'config.json'))).mode & 0o777, 0o600);
    const again = await exec(cog, ['logout', '127.0.0.1:5999'], { env: envFor(dir) });
    assert.match(again.stdout, /Not logged in to 127\.0\.0\.1:5999/);
  });
});

/** A fake Replicate API: display-token-url and verify-token; `alice` owns `good-token`. */
interface FakeReplicate {
  readonly host: string;
  readonly requests: { method: string; path: string; body: string }[];
  close(): Promise<void>;
}

async function fakeReplicate(options: { notReplicate?: boolean } = {}): Promise<FakeReplicate> {
  const requests: FakeReplicate['requests'] = [];
  const readBody = async (req: IncomingMessage) => {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    return text;
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      requests.push({ method: req.method ?? '', path: req.url ?? '', body });
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (options.notReplicate) return json(404, { detail: 'not found' });
      if (req.method === 'GET' && req.url === '/cog/v1/display-token-url')
        return json(200, { url: 'https://replicate.example/auth/token' });
      if (req.method === 'POST' && req.url === '/cog/v1/verify-token') {
        const token = new URLSearchParams(body).get('token');
        if (req.headers['content-type'] !== 'application/x-www-form-urlencoded')
          return json(400, { detail: 'form expected' });
        return token === 'good-token' ? json(200, { username: 'alice' }) : json(404, { detail: 'no user' });
      }
      json(404, { detail: 'not found' });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('cog login with the r8.im token flow (fake Replicate server)', () => {
  let replicate: FakeReplicate;
  before(async () => {
    replicate = await fakeReplicate();
  });
  after(() => replicate.close());

  const replicateEnv = (dir: string) =>
    envFor(dir, { COG_REGISTRY_HOST: replicate.host, COG_REPLICATE_LOGIN: '1' });

  test('an API token (r8_…) is refused before anything is sent', async () => {
    const dir = await configDirWith(undefined);
    const token = `r8_${randomBytes(8).toString('hex')}`;
    const result = await exec(cog, ['login', '--token-stdin'], { env: replicateEnv(dir), input: token });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /API token/);
    assert.match(result.stderr, /replicate\.com\/auth\/token/);
    assertNoSecret(result, token);
    assert.ok(!replicate.requests.some((r) => r.path === '/cog/v1/verify-token' && r.body.includes(token)));
    assert.equal(await exists(join(dir, 'config.json')), false);
  });

  test('a good token is verified and stored as username + token', async () => {
    const dir = await configDirWith(undefined);
    const result = await exec(cog, ['login', '--token-stdin'], {
      env: replicateEnv(dir),
      input: '  good-token \n',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Login Succeeded/);
    assert.match(result.stderr, new RegExp(`Logged in to ${replicate.host} as alice`));
    assertNoSecret(result, 'good-token');
    const verify = replicate.requests.find((r) => r.path === '/cog/v1/verify-token');
    assert.equal(verify?.method, 'POST');
    assert.equal(verify?.body, 'token=good-token');
    const auths = (await readConfig(dir)).auths as Record<string, { auth?: string }>;
    assert.equal(decode(auths[replicate.host]?.auth), 'alice:good-token');
  });

  test('REGISTRY and --registry name the host instead of COG_REGISTRY_HOST', async () => {
    for (const args of [[replicate.host], ['--registry', replicate.host]]) {
      const dir = await configDirWith(undefined);
      const result = await exec(cog, ['login', '--token-stdin', ...args], {
        env: envFor(dir, { COG_REPLICATE_LOGIN: '1', COG_REGISTRY_HOST: '127.0.0.1:1' }),
        input: 'good-token',
      });
      assert.equal(result.code, 0, result.stderr);
      const auths = (await readConfig(dir)).auths as Record<string, { auth?: string }>;
      assert.equal(decode(auths[replicate.host]?.auth), 'alice:good-token');
    }
  });

  test('an unknown token fails and stores nothing', async () => {
    const dir = await configDirWith(undefined);
    const result = await exec(cog, ['login', '--token-stdin'], {
      env: replicateEnv(dir),
      input: 'nobodys-token',
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no user has that token/);
    assertNoSecret(result, 'nobodys-token');
    assert.equal(await exists(join(dir, 'config.json')), false);
  });

  test('a host without the token endpoints points at the username/password login', async () => {
    const other = await fakeReplicate({ notReplicate: true });
    try {
      const dir = await configDirWith(undefined);
      const result = await exec(cog, ['login', '--token-stdin', other.host], {
        env: envFor(dir, { COG_REPLICATE_LOGIN: '1' }),
        input: 'good-token',
      });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /is not a Replicate registry/);
      assert.match(result.stderr, new RegExp(`cog login ${other.host}`));
      assert.match(result.stderr, new RegExp(`docker login ${other.host}`));
      assert.ok(!other.requests.some((r) => r.path === '/cog/v1/verify-token'));
      assert.equal(await exists(join(dir, 'config.json')), false);
    } finally {
      await other.close();
    }
  });

  test('without COG_REPLICATE_LOGIN a non-r8.im host uses the username/password flow', async () => {
    const dir = await configDirWith(undefined);
    const result = await exec(cog, ['login', '--token-stdin', replicate.host], {
      env: envFor(dir),
      input: 'good-token',
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /needs a username/);
  });

  test('logout defaults to COG_REGISTRY_HOST', async () => {
    const dir = await configDirWith({
      auths: { [replicate.host]: { auth: Buffer.from('alice:good-token').toString('base64') } },
    });
    const result = await exec(cog, ['logout'], { env: replicateEnv(dir) });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`Logged out of ${replicate.host}`));
    assert.deepEqual(await readConfig(dir), { auths: {} });
  });
});
