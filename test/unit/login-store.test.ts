import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmod,
  lstat,
  mkdir,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { resolveRegistryHost } from '../../src/cli/login.js';
import { loadDockerConfig } from '../../src/buildkit/docker-config.js';
import { processStartTicks, startTicksFromProc } from '../../src/process-start.js';
import {
  encodeAuthField,
  eraseCredentials,
  storeCredentials,
  withAuthEntry,
  withoutAuthEntries,
} from '../../src/registry/credential-store.js';
import { redactSecrets } from '../../src/registry/redact.js';
import { isApiToken, replicateBaseUrl, usesReplicateLogin } from '../../src/registry/replicate-auth.js';
import { CogError } from '../../src/errors.js';
import { exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

const tempDir = tempDirsRemovedAfterTests();
const creds = { username: 'ann', secret: 's3cret:with:colons' };

describe('config.json edits (pure)', () => {
  test('withAuthEntry adds base64(user:secret) under the host and keeps other fields', () => {
    const before = { psFormat: 'x', auths: { 'a.example': { auth: 'YTpi' } }, credsStore: 'desktop' };
    const after = withAuthEntry(before, 'Registry.Example:5000', creds);
    assert.deepEqual(after, {
      psFormat: 'x',
      credsStore: 'desktop',
      auths: {
        'a.example': { auth: 'YTpi' },
        'registry.example:5000': { auth: encodeAuthField('ann', creds.secret) },
      },
    });
    assert.equal(
      Buffer.from(encodeAuthField('ann', creds.secret), 'base64').toString(),
      'ann:s3cret:with:colons',
    );
    assert.deepEqual(before.auths, { 'a.example': { auth: 'YTpi' } }, 'the input is not modified');
  });

  test('Docker Hub aliases are stored under https://index.docker.io/v1/ and replace old alias keys', () => {
    for (const host of [
      'docker.io',
      'index.docker.io',
      'registry-1.docker.io',
      'https://index.docker.io/v1/',
    ]) {
      const after = withAuthEntry({ auths: { 'index.docker.io': { auth: 'b2xkOm9sZA==' } } }, host, creds);
      assert.deepEqual(Object.keys(after.auths as object), ['https://index.docker.io/v1/'], host);
    }
  });

  test('withAuthEntry drops URL-style keys for the same host', () => {
    const after = withAuthEntry(
      { auths: { 'http://127.0.0.1:5000/v2/': { auth: 'YTpi' } } },
      '127.0.0.1:5000',
      creds,
    );
    assert.deepEqual(Object.keys(after.auths as object), ['127.0.0.1:5000']);
  });

  test('withoutAuthEntries removes every key for the host and says whether a secret went', () => {
    const json = {
      auths: { 'h.example': { auth: 'YTpi' }, 'https://h.example/v1/': {}, 'k.example': {} },
      x: 1,
    };
    const out = withoutAuthEntries(json, 'h.example');
    assert.deepEqual(out.json, { auths: { 'k.example': {} }, x: 1 });
    assert.equal(out.changed, true);
    assert.equal(out.removed, true);
    const empty = withoutAuthEntries({ auths: { 'h.example': {} } }, 'h.example');
    assert.equal(empty.changed, true);
    assert.equal(empty.removed, false);
    const none = withoutAuthEntries({ credsStore: 'x' }, 'h.example');
    assert.equal(none.changed, false);
  });

  test('redactSecrets hides the secret and its base64 form', () => {
    const b64 = Buffer.from('hunter22').toString('base64');
    assert.equal(redactSecrets(`bad hunter22 and ${b64}`, ['hunter22']), 'bad *** and ***');
    // the `auth` field / Basic header form, and a URL-encoded one
    const auth = Buffer.from('ann:p@ss word').toString('base64');
    assert.equal(
      redactSecrets(`auth=${auth} url=ann%3Ap%40ss%20word form=p%40ss+word`, ['p@ss word', 'ann:p@ss word']),
      'auth=*** url=*** form=***',
    );
    assert.equal(redactSecrets('q=p%40ss%20w%2f%c3%b6', ['p@ss w/ö']), 'q=***', 'lower-case escapes');
    assert.equal(redactSecrets('ab', ['a']), 'ab', 'very short secrets are not hunted');
  });

  test('redactSecrets hides the secret however a JSON encoder escaped it', () => {
    const secret = 'pé<ss>/"wörd"\\\n';
    const forms = [
      JSON.stringify(secret).slice(1, -1), // as JavaScript writes it: é and ö as they are
      'p\\u00e9\\u003css\\u003e\\/\\"w\\u00f6rd\\"\\\\\\n', // Go's HTML-safe, ASCII-only style
      'p\\u00E9<ss>/\\u0022w\\u00F6rd\\u0022\\u005c\\u000A', // upper-case hex; \\u00XX where a short escape would do
    ];
    for (const form of forms)
      assert.equal(redactSecrets(`{"Secret":"${form}"}`, [secret]), '{"Secret":"***"}', form);
    // a character outside the BMP, as a surrogate pair
    assert.equal(redactSecrets('x \\ud83d\\ude00abc y', ['😀abc']), 'x *** y');
    assert.equal(redactSecrets('no secret here', [secret]), 'no secret here');
  });
});

describe('registry host and provider choice', () => {
  test('REGISTRY, else COG_REGISTRY_HOST, else r8.im; normalised', () => {
    assert.equal(resolveRegistryHost(undefined, {}), 'r8.im');
    assert.equal(resolveRegistryHost(undefined, { COG_REGISTRY_HOST: 'R.example:5000' }), 'r.example:5000');
    assert.equal(resolveRegistryHost('https://Quay.io/v2/', { COG_REGISTRY_HOST: 'x' }), 'quay.io');
    assert.equal(resolveRegistryHost('index.docker.io', {}), 'docker.io');
    assert.throws(() => resolveRegistryHost('a b', {}), CogError);
    assert.equal(resolveRegistryHost('[::1]:5000', {}), '[::1]:5000');
    for (const bad of ['host:notaport', '127.0.0.1:99999'])
      assert.throws(
        () => resolveRegistryHost(bad, {}),
        (e: CogError) =>
          e.message === `"${bad}" is not a registry address` && /1 to 65535/.test(e.hint ?? ''),
      );
    assert.throws(
      () => resolveRegistryHost('::1', {}),
      (e: CogError) => /IPv6 address in brackets, e\.g\. `cog login \[::1\]:5000`/.test(e.hint ?? ''),
    );
  });

  test('the Replicate flow is for r8.im, or any host with COG_REPLICATE_LOGIN=1', () => {
    assert.equal(usesReplicateLogin('r8.im', {}), true);
    assert.equal(usesReplicateLogin('https://R8.IM', {}), true);
    assert.equal(usesReplicateLogin('ghcr.io', {}), false);
    assert.equal(usesReplicateLogin('127.0.0.1:9', { COG_REPLICATE_LOGIN: '1' }), true);
    assert.equal(usesReplicateLogin('127.0.0.1:9', { COG_REPLICATE_LOGIN: '0' }), false);
  });

  test('API tokens are recognised; loopback hosts are spoken to over plain HTTP', () => {
    assert.equal(isApiToken('r8_abc'), true);
    assert.equal(isApiToken('abc'), false);
    assert.equal(replicateBaseUrl('r8.im', {}), 'https://r8.im');
    assert.equal(replicateBaseUrl('127.0.0.1:8080', {}), 'http://127.0.0.1:8080');
    assert.equal(
      replicateBaseUrl('r.internal', { COG_INSECURE_REGISTRIES: 'r.internal' }),
      'http://r.internal',
    );
  });
});

describe('storeCredentials / eraseCredentials in config.json', () => {
  test('rewrites atomically with mode 0600, no temp file left', async () => {
    const dir = await tempDir('cogts-login-unit-');
    const file = join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ detachKeys: 'ctrl-e' }), { mode: 0o644 });
    await chmod(file, 0o644);
    const where = await storeCredentials('r.example', creds, { configDir: dir, env: {} });
    assert.deepEqual(where, { kind: 'file', file });
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['config.json']);
    const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    assert.equal(json.detachKeys, 'ctrl-e');
    assert.deepEqual(json.auths, { 'r.example': { auth: encodeAuthField('ann', creds.secret) } });
  });

  test('a full disk: the error says so, and config.json is left as it was', async () => {
    // a tmpfs of 64 KiB, filled up (the suite runs as root: the test bed needs it too)
    const dir = await tempDir('cogts-login-full-');
    const mounted = await exec('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    assert.equal(mounted.code, 0, `mount: ${mounted.stderr}`);
    try {
      const before = JSON.stringify({ auths: { 'other.example': { auth: 'YTpi' } } });
      await writeFile(join(dir, 'config.json'), before);
      await writeFile(join(dir, 'filler'), Buffer.alloc(1024 * 1024)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOSPC') throw err;
      });
      await assert.rejects(
        storeCredentials('r.example', creds, { configDir: dir, env: {} }),
        (err: Error) => {
          assert.ok(err instanceof CogError);
          assert.match(err.message, /^cannot write .*config\.json \(ENOSPC\)$/);
          assert.equal(
            err.hint,
            'the disk is full: free some space and log in again (the file was left as it was)',
          );
          return true;
        },
      );
      assert.equal(await readFile(join(dir, 'config.json'), 'utf8'), before);
      assert.deepEqual((await readdir(dir)).sort(), ['config.json', 'filler']);
    } finally {
      const unmounted = await exec('umount', [dir]);
      assert.equal(unmounted.code, 0, `umount: ${unmounted.stderr}`);
    }
  });

  test('a symlinked config.json stays a link; its target is updated', async () => {
    const dir = await tempDir('cogts-login-unit-');
    const target = join(dir, 'real.json');
    await writeFile(target, '{}');
    await symlink(target, join(dir, 'config.json'));
    await storeCredentials('r.example', creds, { configDir: dir, env: {} });
    assert.equal((await lstat(join(dir, 'config.json'))).isSymbolicLink(), true);
    assert.ok((await readFile(target, 'utf8')).includes('r.example'));
  });

  test('an invalid config.json is reported and left alone', async () => {
    const dir = await tempDir('cogts-login-unit-');
    await writeFile(join(dir, 'config.json'), '{"auths": [');
    await assert.rejects(storeCredentials('r.example', creds, { configDir: dir, env: {} }), (err: Error) => {
      assert.ok(err instanceof CogError);
      assert.match(err.message, /not valid JSON/);
      return true;
    });
    assert.equal(await readFile(join(dir, 'config.json'), 'utf8'), '{"auths": [');
  });

  test('erase reports nothing when there is no login, and does not create the file', async () => {
    const dir = await tempDir('cogts-login-unit-');
    assert.deepEqual(await eraseCredentials('r.example', { configDir: dir, env: {} }), []);
    assert.deepEqual(await readdir(dir), []);
  });

  test('logins at the same time each keep their entry (the file is changed under a lock)', async () => {
    const dir = await tempDir('cogts-login-unit-');
    const hosts = Array.from({ length: 16 }, (_, i) => `r${i}.example`);
    await Promise.all(hosts.map((h) => storeCredentials(h, creds, { configDir: dir, env: {} })));
    const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { auths: object };
    assert.deepEqual(Object.keys(json.auths).sort(), [...hosts].sort());
    assert.deepEqual(await readdir(dir), ['config.json'], 'no lock or temp file left');
  });

  test("logins at the same time that find a dead holder's lock each keep their entry (one clears it)", async () => {
    // two waiters both judged the dead lock stale; one cleared it and took the lock anew (the file
    // system can give the new file the freed inode), and the other removed that live lock
    for (let round = 0; round < 30; round++) {
      const dir = await tempDir('cogts-login-unit-');
      await writeFile(join(dir, 'config.json.lock'), `${2 ** 22 + 7}@${hostname()}:1`);
      const hosts = Array.from({ length: 10 }, (_, i) => `r${i}.example`);
      await Promise.all(hosts.map((h) => storeCredentials(h, creds, { configDir: dir, env: {} })));
      const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { auths: object };
      assert.deepEqual(Object.keys(json.auths).sort(), [...hosts].sort(), `round ${round}`);
      assert.deepEqual(await readdir(dir), ['config.json'], 'no lock or temp file left');
    }
  });

  test("a broken auths entry stops no login: another host's is kept, the host's own is replaced or removed", async () => {
    const dir = await tempDir('cogts-login-unit-');
    const file = join(dir, 'config.json');
    await writeFile(
      file,
      JSON.stringify({ auths: { 'bad.example': { auth: '!!!' }, 'r.example': { auth: '!!' } } }),
    );
    await storeCredentials('r.example', creds, { configDir: dir, env: {} });
    let json = JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, unknown> };
    assert.deepEqual(json.auths['bad.example'], { auth: '!!!' });
    assert.deepEqual(json.auths['r.example'], { auth: encodeAuthField('ann', creds.secret) });
    await eraseCredentials('bad.example', { configDir: dir, env: {} });
    json = JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, unknown> };
    assert.deepEqual(Object.keys(json.auths), ['r.example']);
  });

  test('a config.json link whose target does not exist yet is written through (the link stays)', async () => {
    const dir = await tempDir('cogts-login-unit-');
    await symlink('elsewhere/real.json', join(dir, 'config.json'));
    await storeCredentials('r.example', creds, { configDir: dir, env: {} });
    assert.equal((await lstat(join(dir, 'config.json'))).isSymbolicLink(), true);
    assert.ok((await readFile(join(dir, 'elsewhere', 'real.json'), 'utf8')).includes('r.example'));
  });

  test('a lock left by a process that is gone is cleared at once; a live one is waited for', async () => {
    const dir = await tempDir('cogts-login-unit-');
    // a pid that is not running on this host (the kernel's limit is below 2^22)
    await writeFile(join(dir, 'config.json.lock'), `${2 ** 22 + 7}@${hostname()}`);
    const started = Date.now();
    await storeCredentials('r.example', creds, { configDir: dir, env: {} });
    assert.ok(Date.now() - started < 2_000, `waited ${Date.now() - started} ms for a dead lock`);
    assert.deepEqual(await readdir(dir), ['config.json']);
  });

  test('a lock naming a live process that started at another time than its writer (its pid reused) is cleared', async () => {
    const dir = await tempDir('cogts-login-unit-');
    const unrelated = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => unrelated.once('spawn', resolve));
      const ticks = await processStartTicks(unrelated.pid ?? 0);
      assert.ok(ticks !== undefined, 'this test needs /proc');
      const lock = join(dir, 'config.json.lock');
      // written by a process that started at another time and had this pid
      await writeFile(lock, `${unrelated.pid}@${hostname()}:${Number(ticks) - 1}`);
      const started = Date.now();
      await storeCredentials('r.example', creds, { configDir: dir, env: {} });
      assert.ok(Date.now() - started < 2_000, `waited ${Date.now() - started} ms for a reused pid's lock`);
      assert.deepEqual(await readdir(dir), ['config.json']);
    } finally {
      unrelated.kill();
    }
  });

  test("a live writer's lock is held whatever its file's time says (a network file system's clock)", async () => {
    const dir = await tempDir('cogts-login-unit-');
    const lock = join(dir, 'config.json.lock');
    const ticks = await processStartTicks('self');
    assert.ok(ticks !== undefined, 'this test needs /proc');
    await writeFile(lock, `${process.pid}@${hostname()}:${ticks}`);
    const anHourAgo = new Date(Date.now() - 3600_000);
    await utimes(lock, anHourAgo, anHourAgo);
    let settled = false;
    const storing = storeCredentials('r.example', creds, { configDir: dir, env: {} }).finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(settled, false, 'the login waits');
    assert.equal(
      await readFile(lock, 'utf8'),
      `${process.pid}@${hostname()}:${ticks}`,
      'the lock is left alone',
    );
    await rm(lock);
    await storing;
  });

  test('a lock its live writer holds is waited for, and taken once it is let go', async () => {
    const dir = await tempDir('cogts-login-unit-');
    const lock = join(dir, 'config.json.lock');
    // this process, running since before the lock was written: a real holder
    await writeFile(lock, `${process.pid}@${hostname()}`);
    let settled = false;
    const storing = storeCredentials('r.example', creds, { configDir: dir, env: {} }).finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(settled, false, 'the login waits');
    assert.equal(await readFile(lock, 'utf8'), `${process.pid}@${hostname()}`, 'the lock is left alone');
    await rm(lock);
    await storing;
    assert.ok((await readFile(join(dir, 'config.json'), 'utf8')).includes('r.example'));
  });

  test("a process's start is read from /proc, whatever its name holds", () => {
    // fields after the name: state (3) … starttime (22), here 12345 ticks after boot
    const rest = ['S', ...Array.from({ length: 18 }, (_, i) => String(i + 4)), '12345', '99', '100'].join(
      ' ',
    );
    assert.equal(startTicksFromProc(`42 (a) (b c) ${rest}`), '12345');
    assert.equal(startTicksFromProc('42 (a) S 1 2'), undefined, 'too few fields');
    assert.equal(startTicksFromProc('no name'), undefined);
  });

  test('a config.json that is a link loop, or under one, says which path loops', async () => {
    const dir = await tempDir('cogts-login-unit-');
    await symlink('config.json', join(dir, 'config.json'));
    await assert.rejects(
      storeCredentials('r.example', creds, { configDir: dir, env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof CogError);
        assert.equal(
          err.message,
          `cannot read ${join(dir, 'config.json')}: it is a symbolic link whose links lead round in a loop (ELOOP)`,
        );
        assert.match(
          err.hint ?? '',
          new RegExp(`^point the link ${join(dir, 'config.json')} at a real file`),
        );
        return true;
      },
    );
    await symlink('loop', join(dir, 'loop'));
    await assert.rejects(loadDockerConfig({ configDir: join(dir, 'loop') }), (err: unknown) => {
      assert.ok(err instanceof CogError);
      assert.match(
        err.message,
        /its directory .*\/loop is reached through symbolic links that lead round in a loop/,
      );
      assert.match(err.hint ?? '', /^point the links on the path to .*\/loop at a real directory/);
      return true;
    });
  });

  test('a bad top-level field: the hint says to fix the file, naming it and the field, not to log in', async () => {
    for (const [json, field] of [
      [{ credsStore: 5 }, 'credsStore'],
      [{ credHelpers: { 'r.example': 1 } }, 'credHelpers["r.example"]'],
      [{ auths: 'x' }, 'auths'],
      [[], 'the top level'],
    ] as const) {
      const dir = await tempDir('cogts-login-unit-');
      const file = join(dir, 'config.json');
      await writeFile(file, JSON.stringify(json));
      for (const run of [
        () => storeCredentials('r.example', creds, { configDir: dir, env: {} }),
        () => eraseCredentials('r.example', { configDir: dir, env: {} }),
      ])
        await assert.rejects(run(), (err: unknown) => {
          assert.ok(err instanceof CogError);
          assert.ok(err.message.startsWith(`${file}: ${field} `), err.message);
          assert.ok(err.hint?.includes(file), err.hint);
          assert.match(
            err.hint ?? '',
            field === 'the top level'
              ? /one JSON object/
              : new RegExp(`fix or remove ${field.replace(/[[\]"]/g, '.')} in `),
          );
          assert.match(err.hint ?? '', /by hand/);
          assert.doesNotMatch(err.hint ?? '', /replaces or removes/);
          return true;
        });
    }
    // one registry's entry: a login or logout for that registry mends it, and the hint says so
    const dir = await tempDir('cogts-login-unit-');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'r.example': { auth: '!!' } } }));
    await assert.rejects(loadDockerConfig({ configDir: dir }), (err: unknown) => {
      assert.ok(err instanceof CogError);
      assert.match(err.hint ?? '', /`cog login` or `cog logout` for that registry replaces or removes it/);
      return true;
    });
  });

  test('config.json linked relatively from a linked directory is written where the kernel reads it', async () => {
    const root = await tempDir('cogts-login-unit-');
    await mkdir(join(root, 'real', 'docker'), { recursive: true });
    await mkdir(join(root, 'real', 'shared'));
    await writeFile(join(root, 'real', 'shared', 'config.json'), '{}');
    await symlink(join(root, 'real', 'docker'), join(root, 'dot-docker'));
    // `..` from the link's real directory is real/, not root/
    await symlink('../shared/config.json', join(root, 'real', 'docker', 'config.json'));
    await storeCredentials('r.example', creds, { configDir: join(root, 'dot-docker'), env: {} });
    assert.ok((await readFile(join(root, 'real', 'shared', 'config.json'), 'utf8')).includes('r.example'));
    await assert.rejects(stat(join(root, 'shared')), { code: 'ENOENT' }, 'nothing written beside the link');
  });

  test('logout through a helper that fails still removes the plain-text entry, then says the helper failed', async () => {
    const dir = await tempDir('cogts-login-unit-');
    const file = join(dir, 'config.json');
    await writeFile(
      file,
      JSON.stringify({ credsStore: 'cogts-missing-helper', auths: { 'r.example': { auth: 'YTpi' } } }),
    );
    await assert.rejects(
      eraseCredentials('r.example', { configDir: dir, env: { PATH: dir } }),
      (err: unknown) => {
        assert.ok(err instanceof CogError);
        assert.match(
          err.message,
          /cogts-missing-helper is not installed.*; the entries for r\.example in .* were removed/,
        );
        assert.match(err.hint ?? '', /may still be in the helper's keychain/);
        return true;
      },
    );
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), {
      credsStore: 'cogts-missing-helper',
      auths: {},
    });
  });

  test('a helper that is not installed is named in the error', async () => {
    const dir = await tempDir('cogts-login-unit-');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'cogts-missing-helper' }));
    await assert.rejects(
      storeCredentials('r.example', creds, { configDir: dir, env: { PATH: dir } }),
      /docker-credential-cogts-missing-helper is not installed/,
    );
  });

  test('a failing helper that echoes the secret JSON-escaped (\\u00e9) is shown with it masked', async () => {
    const dir = await tempDir('cogts-login-unit-');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'cogts-escaping' }));
    // what a Go helper prints with ASCII-only JSON: the secret's é and ö as \u escapes
    await writeFile(
      join(dir, 'docker-credential-cogts-escaping'),
      `#!/bin/sh\ncat >/dev/null\necho 'cannot store {"Username":"ann","Secret":"p\\u00e9ss-w\\u00f6rd"}' >&2\nexit 1\n`,
      { mode: 0o755 },
    );
    await assert.rejects(
      storeCredentials(
        'r.example',
        { username: 'ann', secret: 'péss-wörd' },
        { configDir: dir, env: { PATH: dir } },
      ),
      (err: unknown) => {
        assert.ok(err instanceof CogError);
        assert.match(err.message, /docker-credential-cogts-escaping failed to store/);
        assert.match(err.message, /"Secret":"\*\*\*"/);
        assert.doesNotMatch(err.message, /u00e9ss/);
        return true;
      },
    );
  });
});
