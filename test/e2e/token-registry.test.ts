// `cog push`, `cog login` and `cog inspect` against the test bed's token registry: distribution with
// `auth: token:` and its token server (scripts/testbed-token-server.mjs), the Bearer flow of r8.im,
// Docker Hub and GHCR. Without a login the check before the build gets an anonymous token granting only
// pull, and the push fails before any build step; a wrong password is refused by `cog login`; after
// `cog login` the push lands (skopeo reads back the digest), so does `cog build --push` (buildkitd
// pushes, asking cog's session), and `cog inspect` reads the image with the stored login; an identity
// token in config.json is exchanged through the OAuth2 POST; a token the registry refuses as expired is
// renewed once; a credential helper runs once per `cog push` and per `cog build --push`. The token
// server's log shows which tokens it issued to whom; cog's output never shows one.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { before, describe, test } from 'node:test';
import { basicAuth, writeCredentialHelper } from '../support/docker-config.js';
import { type ExecResult, exec, execOk } from '../support/exec.js';
import { stepsFromPlainProgress } from '../support/plain-steps.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { type Testbed, ensureTestbed, repoRoot } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const hello = join(repoRoot, 'fixtures', 'models', 'hello');
const tempDir = tempDirsRemovedAfterTests();
const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
let tb: Testbed;
let store: string;
let dockerConfig: string;

before(async () => {
  tb = await ensureTestbed();
  store = join(await tempDir('cogts-token-store-'), 'store');
  dockerConfig = await tempDir('cogts-token-cfg-');
});

/** The test bed's environment with our store, our DOCKER_CONFIG and no ambient registry credentials. */
function env(configDir = dockerConfig): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...tb.env, COG_IMAGE_STORE: store, DOCKER_CONFIG: configDir };
  for (const name of [
    'COG_REGISTRY_USERNAME',
    'COG_REGISTRY_PASSWORD',
    'DOCKER_AUTH_CONFIG',
    'BUILDKIT_PROGRESS',
  ])
    delete base[name];
  return base;
}

const cogRun = (args: string[], input?: string, configDir?: string) =>
  exec(cog, args, { cwd: hello, env: env(configDir), ...(input === undefined ? {} : { input }) });

function explain(r: ExecResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Every cog run's output, for the check that no secret was ever printed. */
const outputs: ExecResult[] = [];
async function cogLogged(args: string[], input?: string, configDir?: string): Promise<ExecResult> {
  const r = await cogRun(args, input, configDir);
  outputs.push(r);
  return r;
}

/** What `action` resolves to, and the lines the test bed's `log` (a file in its state directory) gained meanwhile. */
async function linesLoggedDuring<T>(
  log: string,
  action: () => Promise<T>,
): Promise<{ result: T; lines: string[] }> {
  const logFile = join(tb.stateDir, log);
  const start = (await readFile(logFile, 'utf8')).length;
  const result = await action();
  return { result, lines: (await readFile(logFile, 'utf8')).slice(start).split('\n') };
}

/** The token server's log lines for tokens issued while `action` ran: `jti`, `sub` and `access`. */
async function tokensIssuedDuring<T>(
  action: () => Promise<T>,
): Promise<{ result: T; tokens: IssuedToken[] }> {
  const { result, lines } = await linesLoggedDuring('token-server.log', action);
  const tokens = lines.flatMap((line) => {
    const m = /issued( expired)? jti=(\S+) sub=(\S+) client=(\S+) access=(.*)$/.exec(line);
    return m ? [{ expired: m[1] !== undefined, jti: m[2]!, sub: m[3]!, client: m[4]!, access: m[5]! }] : [];
  });
  return { result, tokens };
}

/** A token the token server's log says it issued (`expired`: already, see `lapse-` repositories). */
interface IssuedToken {
  readonly expired: boolean;
  readonly jti: string;
  readonly sub: string;
  readonly client: string;
  readonly access: string;
}

/** The token registry's log lines, written while `action` ran, that refused a token as invalid. */
async function invalidTokensDuring<T>(action: () => Promise<T>): Promise<{ result: T; refused: string[] }> {
  const { result, lines } = await linesLoggedDuring('token-registry.log', action);
  return {
    result,
    refused: lines.filter((line) => line.includes('error authorizing context: invalid token')),
  };
}

async function skopeoDigest(ref: string): Promise<string> {
  const { stdout } = await execOk(
    'skopeo',
    [
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `${tb.authUser}:${tb.authPassword}`,
      `docker://${ref}`,
    ],
    { env: tb.env },
  );
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}

describe('cog against the token (Bearer) registry', { timeout: 600_000 }, () => {
  const repo = `cogts-token/hello-${run}`;
  const target = () => `${tb.tokenRegistry}/${repo}:v1`;
  const escaped = () => tb.tokenRegistry.replace(/\./g, '\\.');
  let digest: string;
  const issuedJtis: string[] = [];
  let identityToken = '';

  test('the registry asks for a Bearer token from the test bed token server', async () => {
    const res = await fetch(`http://${tb.tokenRegistry}/v2/`);
    assert.equal(res.status, 401);
    assert.match(
      res.headers.get('www-authenticate') ?? '',
      /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service=/,
    );
  });

  test('cog push without a login fails before any build step: an anonymous token grants only pull', async () => {
    const { result: r, tokens } = await tokensIssuedDuring(() =>
      cogLogged(['push', target(), '--progress', 'plain']),
    );
    assert.notEqual(r.code, 0, explain(r));
    assert.match(
      r.stderr,
      new RegExp(`${escaped()} requires authentication to push to ${escaped()}/${repo}`),
    );
    assert.match(r.stderr, new RegExp(`^hint: .*\`cog login ${escaped()}\`.*nothing was built`, 'm'));
    assert.deepEqual(stepsFromPlainProgress(r.stderr).ran, [], 'no build step ran');
    assert.equal(r.stdout, '');
    // the check asked the token server, anonymously, and was granted pull only
    assert.ok(
      tokens.some((t) => t.sub === '(anonymous)' && t.access === `${repo}:pull`),
      JSON.stringify(tokens),
    );
    assert.ok(!tokens.some((t) => t.access.includes('push')), JSON.stringify(tokens));
    issuedJtis.push(...tokens.map((t) => t.jti));
  });

  test('cog login with a wrong password is refused and stores nothing', async () => {
    const r = await cogLogged(
      ['login', tb.tokenRegistry, '--username', tb.authUser, '--password-stdin'],
      'not-the-password-58\n',
    );
    assert.notEqual(r.code, 0, explain(r));
    assert.match(r.stderr, new RegExp(escaped()));
    assert.ok(!r.stderr.includes('not-the-password-58'), r.stderr);
    const stored = await readFile(join(dockerConfig, 'config.json'), 'utf8').catch(() => '');
    assert.ok(!stored.includes(tb.tokenRegistry), `nothing stored for the registry: ${stored}`);
  });

  test('after cog login --password-stdin, cog push lands and skopeo reads back its digest', async () => {
    const login = await cogLogged(
      ['login', tb.tokenRegistry, '--username', tb.authUser, '--password-stdin'],
      `${tb.authPassword}\n`,
    );
    assert.equal(login.code, 0, explain(login));
    const { result: r, tokens } = await tokensIssuedDuring(() =>
      cogLogged(['push', target(), '--progress', 'plain']),
    );
    assert.equal(r.code, 0, explain(r));
    const last = r.stdout.trim().split('\n').at(-1) ?? '';
    const match = /@(sha256:[0-9a-f]{64})$/.exec(last);
    assert.ok(match?.[1] && last.startsWith(`${target()}@`), `stdout ends with the pushed digest: ${last}`);
    digest = match[1];
    assert.equal(await skopeoDigest(target()), digest);
    // five uploads and their token requests share one signal: Node's leak warning was printed here
    assert.doesNotMatch(r.stderr, /\(node:\d+\) \w*Warning/, explain(r));
    // the push went through tokens the server issued to the logged-in user, for pull,push
    assert.ok(
      tokens.some((t) => t.sub === tb.authUser && t.access === `${repo}:pull,push`),
      JSON.stringify(tokens),
    );
    issuedJtis.push(...tokens.map((t) => t.jti));
  });

  test('a token the registry refuses as expired, though its reply said it was good for minutes, is renewed once', async () => {
    // the token server issues a `lapse-` repository's first token an hour out of date (a revoked token,
    // or a token server whose clock runs behind, looks the same): the check before the build gets it,
    // the push sends it, the registry refuses it, and the push goes on with one new token
    const lapsing = `cogts-token/lapse-${run}`;
    const ref = `${tb.tokenRegistry}/${lapsing}:v1`;
    const {
      result: { result: r, tokens },
      refused,
    } = await invalidTokensDuring(() =>
      tokensIssuedDuring(() => cogLogged(['push', ref, '--progress', 'plain'])),
    );
    assert.equal(r.code, 0, explain(r));
    const pushed = /@(sha256:[0-9a-f]{64})$/.exec(r.stdout.trim())?.[1];
    assert.equal(await skopeoDigest(ref), pushed);
    // (a mount from the first push's repository asks for a token of its own, with pull on that one)
    const full = tokens.filter((t) => t.access === `${lapsing}:pull,push`);
    assert.deepEqual(
      full.map((t) => t.expired),
      [true, false],
      `the expired token, then one new one: ${JSON.stringify(tokens)}`,
    );
    assert.ok(
      refused.some((line) => line.includes(`/v2/${lapsing}/`)),
      `the registry refused the expired token:\n${refused.join('\n')}`,
    );
    issuedJtis.push(...tokens.map((t) => t.jti));
  });

  test('cog build --push, where buildkitd pushes with the stored login through cog’s session', async () => {
    const ref = `${tb.tokenRegistry}/${repo}:v3`;
    const { result: r, tokens } = await tokensIssuedDuring(() =>
      cogLogged(['build', '--push', '-t', ref, '--progress', 'quiet']),
    );
    assert.equal(r.code, 0, explain(r));
    const pushed = /Image built as \S+@(sha256:[0-9a-f]{64}) and pushed/.exec(r.stderr + r.stdout)?.[1];
    assert.ok(pushed, explain(r));
    assert.equal(await skopeoDigest(ref), pushed);
    // cog is buildkitd's token authority: every token was fetched by cog (the check before the build,
    // and the session's FetchToken for the daemon's push), none by the daemon with our password
    const pushTokens = tokens.filter((t) => t.sub === tb.authUser && t.access.includes(`${repo}:pull,push`));
    assert.ok(pushTokens.length >= 2, JSON.stringify(tokens));
    assert.deepEqual(
      tokens.filter((t) => t.client !== 'cog-ts'),
      [],
      'no token was fetched by buildkitd itself',
    );
    issuedJtis.push(...tokens.map((t) => t.jti));
  });

  test('with BUILDKIT_NO_CLIENT_TOKEN=1 buildkitd fetches its push token itself, with the credentials it asks for', async () => {
    const ref = `${tb.tokenRegistry}/${repo}:v4`;
    const { result: r, tokens } = await tokensIssuedDuring(() =>
      exec(cog, ['build', '--push', '-t', ref, '--progress', 'quiet'], {
        cwd: hello,
        env: { ...env(), BUILDKIT_NO_CLIENT_TOKEN: '1' },
      }),
    );
    outputs.push(r);
    assert.equal(r.code, 0, explain(r));
    const pushed = /Image built as \S+@(sha256:[0-9a-f]{64}) and pushed/.exec(r.stderr + r.stdout)?.[1];
    assert.equal(await skopeoDigest(ref), pushed);
    assert.ok(
      tokens.some(
        (t) => t.client !== 'cog-ts' && t.sub === tb.authUser && t.access.includes(`${repo}:pull,push`),
      ),
      JSON.stringify(tokens),
    );
    issuedJtis.push(...tokens.map((t) => t.jti));
  });

  test('cog build --push and cog push each ask a credential helper once: the check before the build and the push share it', async () => {
    const bin = await tempDir('cogts-token-helper-');
    const calls = join(bin, 'calls.log');
    await writeCredentialHelper(bin, 'cogtscount', {
      host: tb.tokenRegistry,
      username: tb.authUser,
      secret: tb.authPassword,
      callsLog: calls,
    });
    const configDir = await tempDir('cogts-token-helper-cfg-');
    await writeFile(
      join(configDir, 'config.json'),
      JSON.stringify({ credHelpers: { [tb.tokenRegistry]: 'cogtscount' } }),
    );
    const ref = `${tb.tokenRegistry}/${repo}:v5`;
    const { result: r, tokens } = await tokensIssuedDuring(() =>
      exec(cog, ['build', '--push', '-t', ref, '--progress', 'quiet'], {
        cwd: hello,
        env: { ...env(configDir), PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` },
      }),
    );
    outputs.push(r);
    assert.equal(r.code, 0, explain(r));
    const pushed = /Image built as \S+@(sha256:[0-9a-f]{64}) and pushed/.exec(r.stderr + r.stdout)?.[1];
    assert.equal(await skopeoDigest(ref), pushed);
    // tokens for the check and for the daemon's push, both with the helper's credentials
    assert.ok(
      tokens.filter((t) => t.sub === tb.authUser && t.access.includes(`${repo}:pull,push`)).length >= 2,
      JSON.stringify(tokens),
    );
    assert.equal(await readFile(calls, 'utf8'), `get ${tb.tokenRegistry}\n`);
    issuedJtis.push(...tokens.map((t) => t.jti));

    // cog push too: its check before the build and its push share one registry client
    const pushRef = `${tb.tokenRegistry}/${repo}:v6`;
    const p = await exec(cog, ['push', pushRef, '--progress', 'plain'], {
      cwd: hello,
      env: { ...env(configDir), PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` },
    });
    outputs.push(p);
    assert.equal(p.code, 0, explain(p));
    assert.equal(await skopeoDigest(pushRef), /@(sha256:[0-9a-f]{64})$/.exec(p.stdout.trim())?.[1]);
    assert.equal(await readFile(calls, 'utf8'), `get ${tb.tokenRegistry}\n`.repeat(2));
  });

  test('cog inspect --remote reads the pushed image with the stored login', async () => {
    const { result: r, tokens } = await tokensIssuedDuring(() =>
      cogLogged(['inspect', '--remote', '--json', target()]),
    );
    assert.equal(r.code, 0, explain(r));
    const parsed = JSON.parse(r.stdout) as { reference: string; digest: string; source: string };
    assert.equal(parsed.reference, target());
    assert.equal(parsed.digest, digest);
    assert.equal(parsed.source, 'registry');
    assert.ok(
      tokens.some((t) => t.sub === tb.authUser && t.access.startsWith(`${repo}:pull`)),
      JSON.stringify(tokens),
    );
    issuedJtis.push(...tokens.map((t) => t.jti));
  });

  test('an identity token in config.json is exchanged by the OAuth2 POST (refresh_token) and pushes', async () => {
    // what `docker login` stores for registries that hand out refresh tokens
    const res = await fetch(tb.env.COG_TEST_TOKEN_REALM!, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'password',
        username: tb.authUser,
        password: tb.authPassword,
        access_type: 'offline',
        client_id: 'cog-ts-e2e',
      }),
    });
    assert.equal(res.status, 200);
    const refreshToken = ((await res.json()) as { refresh_token?: string }).refresh_token;
    assert.ok(refreshToken, 'the token server hands out a refresh token');
    identityToken = refreshToken;
    const configDir = await tempDir('cogts-token-identity-');
    await writeFile(
      join(configDir, 'config.json'),
      JSON.stringify({ auths: { [tb.tokenRegistry]: { identitytoken: refreshToken } } }),
    );
    const { result: r, tokens } = await tokensIssuedDuring(() =>
      cogLogged(['push', `${tb.tokenRegistry}/${repo}:v2`, '--progress', 'plain'], undefined, configDir),
    );
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stderr, /\(0 uploaded/);
    assert.equal(await skopeoDigest(`${tb.tokenRegistry}/${repo}:v2`), digest);
    // only the refresh_token grant turns the identity token into the user's tokens (a Basic GET of it is refused)
    assert.ok(
      tokens.some((t) => t.sub === tb.authUser && t.access === `${repo}:pull,push`),
      JSON.stringify(tokens),
    );
    issuedJtis.push(...tokens.map((t) => t.jti));
  });

  test('no password, Basic credential, token or token id appears in any of cog’s output', () => {
    assert.ok(outputs.length >= 7, `${outputs.length} runs recorded`);
    assert.ok(issuedJtis.length >= 3, `${issuedJtis.length} tokens issued`);
    assert.ok(identityToken, 'the identity-token test ran');
    const secrets = [tb.authPassword, basicAuth(tb.authUser, tb.authPassword), identityToken, ...issuedJtis];
    for (const r of outputs) {
      for (const text of [r.stdout, r.stderr]) {
        // every JWT starts with the base64 of `{"`: eyJ
        assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{10,}/, `a token in the output:\n${text}`);
        for (const secret of secrets) assert.ok(!text.includes(secret), `a secret in the output:\n${text}`);
      }
    }
  });
});
