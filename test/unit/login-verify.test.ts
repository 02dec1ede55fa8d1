import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { login } from '../../src/cli/login.js';
import type { CogError } from '../../src/errors.js';
import { readHidden } from '../../src/cli/prompt.js';
import { LoginRejectedError, verifyRegistryLogin } from '../../src/registry/verify-login.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

const tempDir = tempDirsRemovedAfterTests();
const good = { username: 'ann', secret: 'right-pw' };
const basicOf = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

/**
 * A registry on loopback: Basic auth, or Bearer with a token service that checks Basic credentials.
 * `realm: 'path'` names the token service by its path only; `token: 'html'` makes it answer a web page.
 */
async function fakeRegistry(
  scheme: 'basic' | 'bearer',
  quirks: { readonly realm?: 'path'; readonly token?: 'html' } = {},
) {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const base = quirks.realm === 'path' ? '' : `http://${req.headers.host}`;
    const ok = req.headers.authorization === basicOf(good.username, good.secret);
    if (req.url?.startsWith('/token') && quirks.token === 'html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<html><body>Sign in to the network</body></html>');
    }
    if (req.url?.startsWith('/token')) {
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(ok ? { token: 'tok' } : { errors: [{ code: 'UNAUTHORIZED' }] }));
    }
    const authorised = scheme === 'basic' ? ok : req.headers.authorization === 'Bearer tok';
    if (req.url === '/v2/' && authorised) {
      res.writeHead(200);
      return res.end('{}');
    }
    res.writeHead(401, {
      'www-authenticate':
        scheme === 'basic' ? 'Basic realm="fake"' : `Bearer realm="${base}/token",service="fake"`,
    });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('verifyRegistryLogin', () => {
  test('a token service named by its path alone is on the registry host', async () => {
    const reg = await fakeRegistry('bearer', { realm: 'path' });
    try {
      await verifyRegistryLogin(reg.host, good, { env: {} });
    } finally {
      await reg.close();
    }
  });

  test('a token service answering a web page is named, with a hint, not a JSON parse error', async () => {
    const reg = await fakeRegistry('bearer', { token: 'html' });
    try {
      await assert.rejects(verifyRegistryLogin(reg.host, good, { env: {} }), (err: Error) => {
        assert.match(err.message, /token service of 127\.0\.0\.1:\d+ .* not JSON \(text\/html\)/);
        assert.match((err as CogError).hint ?? '', /proxy or captive portal/);
        return true;
      });
    } finally {
      await reg.close();
    }
  });

  for (const scheme of ['basic', 'bearer'] as const) {
    test(`${scheme}: accepts good credentials and rejects bad ones`, async () => {
      const reg = await fakeRegistry(scheme);
      try {
        await verifyRegistryLogin(reg.host, good, { env: {} });
        await assert.rejects(
          verifyRegistryLogin(reg.host, { username: 'ann', secret: 'wrong-pw' }, { env: {} }),
          (err: Error) => {
            assert.ok(err instanceof LoginRejectedError);
            assert.ok(!err.message.includes('wrong-pw') && !(err.hint ?? '').includes('wrong-pw'));
            return true;
          },
        );
      } finally {
        await reg.close();
      }
    });
  }
});

/** A fake terminal: PassThrough with isTTY and setRawMode. */
function fakeTty() {
  const input = Object.assign(new PassThrough(), {
    isTTY: true,
    isRaw: false,
    rawCalls: [] as boolean[],
    setRawMode(mode: boolean) {
      input.rawCalls.push(mode);
      input.isRaw = mode;
      return input;
    },
  });
  return input;
}

function sink() {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

/** Resolves once `out` has printed `prompt`. */
async function waitFor(out: () => string, prompt: string) {
  for (let i = 0; i < 200 && !out().includes(prompt); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(out().includes(prompt), `prompt ${prompt} never came: ${out()}`);
}

describe('interactive prompts', () => {
  test('readHidden reads without echo, handles backspace and restores the mode', async () => {
    const tty = fakeTty();
    const out = sink();
    const answer = readHidden(tty, out.stream, 'Password: ');
    tty.write('pa');
    tty.write('x\u007fss\r');
    assert.equal(await answer, 'pass');
    assert.deepEqual(tty.rawCalls, [true, false]);
    assert.equal(out.text(), 'Password: \n');
  });

  test('Ctrl-C aborts the hidden prompt with exit code 130', async () => {
    const tty = fakeTty();
    const answer = readHidden(tty, sink().stream, 'Password: ');
    tty.write('ab\u0003');
    await assert.rejects(answer, (err: Error & { exitCode?: number }) => err.exitCode === 130);
    assert.equal(tty.isRaw, false);
  });

  describe('cog login on a terminal', () => {
    let reg: Awaited<ReturnType<typeof fakeRegistry>>;
    before(async () => {
      reg = await fakeRegistry('basic');
    });
    after(() => reg.close());

    test('asks for username and password, verifies, stores, prints Login Succeeded', async () => {
      const dir = await tempDir('cogts-login-tty-');
      const tty = fakeTty();
      const stdout = sink();
      const stderr = sink();
      const done = login(
        { registry: reg.host },
        { env: { DOCKER_CONFIG: dir }, stdin: tty, stdout: stdout.stream, stderr: stderr.stream },
      );
      await waitFor(stderr.text, 'Username: ');
      tty.write('ann\n');
      await waitFor(stderr.text, 'Password: ');
      tty.write('right-pw\r');
      await done;
      assert.equal(stdout.text(), 'Login Succeeded\n');
      assert.ok(!stderr.text().includes('right-pw'));
      const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as {
        auths: Record<string, { auth: string }>;
      };
      assert.equal(Buffer.from(json.auths[reg.host]?.auth ?? '', 'base64').toString(), 'ann:right-pw');
    });
  });

  test('the Replicate flow waits for Enter, shows the token page and reads the token hidden', async () => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        if (req.url === '/cog/v1/display-token-url')
          res.end(JSON.stringify({ url: 'https://tokens.example/x' }));
        else if (body === 'token=cli-token') res.end(JSON.stringify({ username: 'bob' }));
        else res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const dir = await tempDir('cogts-login-tty-');
      const tty = fakeTty();
      const stdout = sink();
      const stderr = sink();
      const done = login(
        { registry: host },
        {
          env: { DOCKER_CONFIG: dir, COG_REPLICATE_LOGIN: '1', COG_NO_BROWSER: '1' },
          stdin: tty,
          stdout: stdout.stream,
          stderr: stderr.stream,
        },
      );
      await waitFor(stderr.text, 'Press Enter');
      tty.write('\n');
      await waitFor(stderr.text, 'CLI token: ');
      assert.ok(stderr.text().includes('https://tokens.example/x'));
      tty.write('cli-token\r');
      await done;
      assert.equal(stdout.text(), 'Login Succeeded\n');
      assert.ok(!stderr.text().includes('cli-token'));
      const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as {
        auths: Record<string, { auth: string }>;
      };
      assert.equal(Buffer.from(json.auths[host]?.auth ?? '', 'base64').toString(), 'bob:cli-token');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('login input checks (nothing sent, nothing stored)', () => {
  const io = (stdin: NodeJS.ReadableStream, env: NodeJS.ProcessEnv = {}) => ({
    env,
    stdin: stdin as PassThrough,
    stdout: sink().stream,
    stderr: sink().stream,
  });
  const piped = (bytes: Buffer) => {
    const input = new PassThrough();
    input.end(bytes);
    return input;
  };
  const refused = async (run: Promise<void>, message: RegExp) =>
    assert.rejects(run, (err: Error) => {
      assert.match(err.message, message);
      return true;
    });

  test('stdin longer than 64 KiB, or not UTF-8, is refused naming the flag', async () => {
    const dir = await tempDir('cogts-login-input-');
    const env = { DOCKER_CONFIG: dir };
    await refused(
      login(
        { registry: '127.0.0.1:9', username: 'u', passwordStdin: true },
        io(piped(Buffer.alloc(65 * 1024, 0x61)), env),
      ),
      /^--password-stdin: the input is longer than 64 KiB$/,
    );
    await refused(
      login(
        { registry: '127.0.0.1:9', username: 'u', passwordStdin: true },
        io(piped(Buffer.from([0x70, 0xff, 0x77, 0x0a])), env),
      ),
      /^--password-stdin: the input is not UTF-8 text$/,
    );
    await assert.rejects(readFile(join(dir, 'config.json')), { code: 'ENOENT' });
  });

  test("a username with ':' and an empty --password are refused before the registry is asked", async () => {
    await refused(
      login({ registry: '127.0.0.1:9', username: 'a:b', password: 'pw' }, io(piped(Buffer.alloc(0)))),
      /the username "a:b" contains ':'/,
    );
    await refused(
      login({ registry: '127.0.0.1:9', username: 'u', password: '' }, io(piped(Buffer.alloc(0)))),
      /^--password is empty$/,
    );
  });

  test('a bad COG_REGISTRY_HOST is named as the variable', async () => {
    await refused(
      login({ username: 'u', password: 'pw' }, io(piped(Buffer.alloc(0)), { COG_REGISTRY_HOST: 'bad host' })),
      /^COG_REGISTRY_HOST="bad host" is not a registry address$/,
    );
  });

  test("a registry's refusal shows what it said; a 431 says the credentials are too long", async () => {
    const server = createServer((req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' });
        return res.end();
      }
      if (req.headers.authorization.length > 1000) {
        res.writeHead(431);
        return res.end();
      }
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'account locked' }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await refused(
        verifyRegistryLogin(host, good, { env: {} }),
        /rejected the credentials \(HTTP 403: account locked \[DENIED\]\)/,
      );
      await assert.rejects(
        verifyRegistryLogin(host, { username: 'u', secret: 'x'.repeat(2000) }, { env: {} }),
        (err: CogError) =>
          /HTTP 431/.test(err.message) && /longer than the registry accepts/.test(err.hint ?? ''),
      );
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
