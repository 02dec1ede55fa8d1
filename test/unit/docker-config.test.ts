// Registry credentials from docker's config.json and credential helpers, and the Auth service answering them.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { before, describe, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import {
  authService,
  explainRegistryAuthError,
  explainRegistryReachError,
  registryHostInError,
} from '../../src/buildkit/auth.js';
import {
  type CredentialOptions,
  configKeyFor,
  credentialResolver,
  dockerConfigDir,
  findCredentials,
  loadDockerConfig,
  normalizeRegistryHost,
  parseDockerConfig,
  runCredentialHelper,
} from '../../src/buildkit/docker-config.js';
import { execCredentialHelper } from '../../src/buildkit/credential-helper.js';
import { CogError } from '../../src/errors.js';
import { exec } from '../support/exec.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A temp dir with config.json written from `config`, and options that read it with `env`. */
async function configDir(config: unknown, env: NodeJS.ProcessEnv = {}): Promise<CredentialOptions> {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-dockercfg-'));
  await writeFile(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return { configDir: dir, env: { PATH: process.env.PATH, ...env } };
}

async function lookup(config: unknown, host: string, env: NodeJS.ProcessEnv = {}) {
  const options = await configDir(config, env);
  return findCredentials(await loadDockerConfig(options), host, options);
}

describe('registry host normalisation', () => {
  test('strips scheme and path, lower-cases, keeps the port', () => {
    assert.equal(normalizeRegistryHost('https://Registry.Example.com:5000/v2/'), 'registry.example.com:5000');
    assert.equal(normalizeRegistryHost('http://127.0.0.1:5056'), '127.0.0.1:5056');
    assert.equal(normalizeRegistryHost('ghcr.io/owner/repo'), 'ghcr.io');
    assert.equal(normalizeRegistryHost('localhost:5000'), 'localhost:5000');
  });

  test('every Docker Hub alias is docker.io, whose config key is the index URL', () => {
    for (const alias of [
      'docker.io',
      'index.docker.io',
      'registry-1.docker.io',
      'https://index.docker.io/v1/',
      'https://registry-1.docker.io/v2/',
    ])
      assert.equal(normalizeRegistryHost(alias), 'docker.io', alias);
    assert.equal(configKeyFor('registry-1.docker.io'), 'https://index.docker.io/v1/');
    assert.equal(configKeyFor('https://ghcr.io/'), 'ghcr.io');
  });

  test('the config dir is $DOCKER_CONFIG, else ~/.docker', () => {
    assert.equal(dockerConfigDir({ DOCKER_CONFIG: '/etc/dc', HOME: '/home/u' }), '/etc/dc');
    assert.equal(dockerConfigDir({ HOME: '/home/u' }), '/home/u/.docker');
  });
});

describe('config.json auths', () => {
  test('decodes auth, username/password and identitytoken entries', () => {
    const config = parseDockerConfig(
      JSON.stringify({
        auths: {
          'a.example': { auth: b64('alice:pa:ss\0') },
          'b.example': { username: 'bob', password: 'pw' },
          'c.example': { identitytoken: 'tok' },
          'd.example': {},
        },
      }),
      '/x/config.json',
    );
    assert.deepEqual(config.auths.get('a.example'), { username: 'alice', password: 'pa:ss' });
    assert.deepEqual(config.auths.get('b.example'), { username: 'bob', password: 'pw' });
    assert.deepEqual(config.auths.get('c.example'), { identityToken: 'tok' });
    assert.deepEqual(config.auths.get('d.example'), {});
  });

  test('finds entries keyed by host or by URL; Hub requests find the index URL key', async () => {
    const config = {
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hubpw') },
        'http://127.0.0.1:5056/v2/': { auth: b64('u:p') },
        'ghcr.io': { username: 'g', password: 'gp' },
        'quay.io': { identitytoken: 'idtok' },
      },
    };
    assert.deepEqual(await lookup(config, 'registry-1.docker.io'), { username: 'hubuser', secret: 'hubpw' });
    assert.deepEqual(await lookup(config, 'docker.io'), { username: 'hubuser', secret: 'hubpw' });
    assert.deepEqual(await lookup(config, '127.0.0.1:5056'), { username: 'u', secret: 'p' });
    assert.deepEqual(await lookup(config, 'ghcr.io'), { username: 'g', secret: 'gp' });
    // an identity token goes in Secret with an empty Username, as buildkit's own auth provider does
    assert.deepEqual(await lookup(config, 'quay.io'), { username: '', secret: 'idtok' });
    assert.equal(await lookup(config, 'other.example'), undefined);
    assert.equal(await lookup({ auths: { 'x.example': {} } }, 'x.example'), undefined);
  });

  test('a missing config.json means no credentials; DOCKER_CONFIG picks the directory', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'cogts-dockercfg-'));
    const config = await loadDockerConfig({ env: { DOCKER_CONFIG: empty } });
    assert.equal(config.auths.size, 0);
    const options = await configDir({ auths: { 'r.example': { auth: b64('u:p') } } });
    const viaEnv = await loadDockerConfig({ env: { DOCKER_CONFIG: options.configDir } });
    assert.equal(viaEnv.file, join(options.configDir ?? '', 'config.json'));
    assert.deepEqual(viaEnv.auths.get('r.example'), { username: 'u', password: 'p' });
  });

  test('a malformed config.json is an error naming the file and the field', async () => {
    const notJson = await configDir('{"auths": {');
    await assert.rejects(loadDockerConfig(notJson), (err: unknown) => {
      assert.ok(err instanceof CogError);
      assert.match(err.message, /config\.json is not valid JSON/);
      assert.ok(err.message.includes(join(notJson.configDir ?? '', 'config.json')));
      assert.match(err.hint ?? '', /DOCKER_CONFIG/);
      return true;
    });
    const badAuth = await configDir({ auths: { 'r.example': { auth: '!!not base64!!' } } });
    await assert.rejects(loadDockerConfig(badAuth), (err: unknown) => {
      assert.ok(err instanceof CogError);
      assert.ok(err.message.includes(join(badAuth.configDir ?? '', 'config.json')), err.message);
      assert.match(err.message, /auths\["r\.example"\]\.auth is not valid base64/);
      return true;
    });
    const noColon = await configDir({ auths: { 'r.example': { auth: b64('justauser') } } });
    await assert.rejects(
      loadDockerConfig(noColon),
      /auths\["r\.example"\]\.auth does not decode to "username:password"/,
    );
    const badHelpers = await configDir({ credHelpers: ['x'] });
    await assert.rejects(loadDockerConfig(badHelpers), /credHelpers is not an object/);
    const badPassword = await configDir({ auths: { 'r.example': { username: 'u', password: 7 } } });
    await assert.rejects(loadDockerConfig(badPassword), /auths\["r\.example"\]\.password is not a string/);
  });

  test('explicit credentials and DOCKER_AUTH_CONFIG win over config.json', async () => {
    const config = { auths: { 'r.example': { auth: b64('file:filepw') } } };
    const options = await configDir(config, {
      DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'https://r.example': { auth: b64('env:envpw') } } }),
    });
    const loaded = await loadDockerConfig(options);
    assert.deepEqual(await findCredentials(loaded, 'r.example', options), {
      username: 'env',
      secret: 'envpw',
    });
    assert.deepEqual(
      await findCredentials(loaded, 'r.example', {
        ...options,
        extra: { 'r.example': { username: 'x', password: 'xp' } },
      }),
      { username: 'x', secret: 'xp' },
    );
    assert.deepEqual(
      await findCredentials(loaded, 'registry-1.docker.io', {
        extra: { 'docker.io': { username: 'h', password: 'hp' } },
      }),
      { username: 'h', secret: 'hp' },
    );
  });
});

describe('credential helpers', () => {
  let binDir: string;
  let env: NodeJS.ProcessEnv;
  let calls: string;

  before(async () => {
    binDir = await mkdtemp(join(tmpdir(), 'cogts-credhelper-'));
    calls = join(binDir, 'calls.log');
    // docker-credential-fake: creds for two servers, the standard not-found answer, or a failure
    await writeFile(
      join(binDir, 'docker-credential-fake'),
      [
        '#!/bin/sh',
        'url=$(cat)',
        `echo "fake $1 $url" >> "${calls}"`,
        'case "$url" in',
        '  helped.example) echo \'{"ServerURL":"helped.example","Username":"helperuser","Secret":"helpersecret"}\' ;;',
        '  https://index.docker.io/v1/) echo \'{"ServerURL":"x","Username":"<token>","Secret":"hubtoken"}\' ;;',
        '  broken.example) echo "keychain is locked" >&2; exit 2 ;;',
        '  leaky.example) echo \'{"ServerURL":"leaky.example","Username":"u","Secret":"leakedsecret"}\'; exit 3 ;;',
        '  *) echo "credentials not found in native keychain"; exit 1 ;;',
        'esac',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(binDir, 'docker-credential-store'),
      `#!/bin/sh\nurl=$(cat)\necho "store $1 $url" >> "${calls}"\necho '{"Username":"storeuser","Secret":"storesecret"}'\n`,
    );
    await chmod(join(binDir, 'docker-credential-fake'), 0o755);
    await chmod(join(binDir, 'docker-credential-store'), 0o755);
    env = { PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}` };
  });

  test('a helper script whose child holds its output open neither outlives the timeout nor an exit', async () => {
    // the child keeps the pipes: waiting for them to close would wait for `sleep` as well
    await writeFile(join(binDir, 'docker-credential-stuck'), '#!/bin/sh\ncat >/dev/null\nsleep 30\n');
    await writeFile(
      join(binDir, 'docker-credential-forks'),
      '#!/bin/sh\ncat >/dev/null\n(sleep 30) &\necho \'{"Username":"u","Secret":"s"}\'\n',
    );
    await chmod(join(binDir, 'docker-credential-stuck'), 0o755);
    await chmod(join(binDir, 'docker-credential-forks'), 0o755);
    let started = Date.now();
    const stuck = await execCredentialHelper('stuck', 'get', 'x.example', { env, timeoutMs: 300 });
    assert.equal(stuck.timedOut, true);
    assert.ok(Date.now() - started < 5_000, `gave up after ${Date.now() - started} ms`);
    started = Date.now();
    const forks = await execCredentialHelper('forks', 'get', 'x.example', { env, timeoutMs: 20_000 });
    assert.equal(forks.timedOut, false);
    assert.equal(forks.code, 0);
    assert.equal(forks.stdout, '{"Username":"u","Secret":"s"}');
    assert.ok(Date.now() - started < 5_000, `answered after ${Date.now() - started} ms`);
  });

  /** A helper that starts `sleep 1000` (its pid written to `pidFile`) and then never answers. */
  async function hungHelperWithChild(name: string): Promise<string> {
    const pidFile = join(binDir, `${name}.child-pid`);
    await writeFile(
      join(binDir, `docker-credential-${name}`),
      `#!/bin/sh\nsleep 1000 &\necho $! > "${pidFile}.tmp"\nmv "${pidFile}.tmp" "${pidFile}"\nwait\n`,
    );
    await chmod(join(binDir, `docker-credential-${name}`), 0o755);
    return pidFile;
  }

  async function childPid(pidFile: string): Promise<number> {
    for (let i = 0; i < 100; i++) {
      const text = await readFile(pidFile, 'utf8').catch(() => '');
      if (text.trim()) return Number(text.trim());
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`the helper never wrote ${pidFile}`);
  }

  /** Whether `pid` is still running within `ms` (a zombie waiting to be reaped counts as gone). */
  async function stillRunningAfter(pid: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      try {
        process.kill(pid, 0);
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
        if (/^\d+ \(.*\) Z /.test(stat)) return false;
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ESRCH');
        return false;
      }
      if (Date.now() > deadline) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Asserts the helper's child `pid` is gone within 2 s; kills it either way, so no test leaves it running. */
  async function assertGone(pid: number): Promise<void> {
    try {
      assert.equal(await stillRunningAfter(pid, 2_000), false, `the helper's child ${pid} is still running`);
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
    }
  }

  test(
    'a hung helper is killed at the timeout with the programs it started',
    { timeout: 30_000 },
    async () => {
      const pidFile = await hungHelperWithChild('hangs');
      const started = Date.now();
      await assert.rejects(
        runCredentialHelper('hangs', 'x.example', { env, timeoutMs: 300 }),
        (err: unknown) => {
          assert.ok(err instanceof CogError);
          assert.equal(
            err.message,
            'credential helper docker-credential-hangs failed for x.example: no answer within 0.3 s',
          );
          return true;
        },
      );
      assert.ok(Date.now() - started < 5_000, `gave up after ${Date.now() - started} ms`);
      const pid = await childPid(pidFile);
      await assertGone(pid);
    },
  );

  test(
    'a helper still running when cog exits is killed with the programs it started',
    { timeout: 30_000 },
    async () => {
      const pidFile = await hungHelperWithChild('outlives');
      const module = new URL('../../src/buildkit/credential-helper.js', import.meta.url).href;
      // a process that asks the helper, then exits (as a second Ctrl-C does) while it hangs
      const script = [
        `const { execCredentialHelper } = await import(${JSON.stringify(module)});`,
        `void execCredentialHelper('outlives', 'get', 'x.example', { env: ${JSON.stringify(env)}, timeoutMs: 60000 });`,
        `const { existsSync } = await import('node:fs');`,
        `while (!existsSync(${JSON.stringify(pidFile)})) await new Promise((r) => setTimeout(r, 20));`,
        'process.exit(0);',
      ].join('\n');
      const exited = await exec(process.execPath, ['--input-type=module', '-e', script]);
      assert.equal(exited.code, 0, exited.stderr);
      const pid = await childPid(pidFile);
      await assertGone(pid);
    },
  );

  test('a helper answers found, not found (= anonymous) or fails naming helper and server', async () => {
    assert.deepEqual(await runCredentialHelper('fake', 'helped.example', { env }), {
      username: 'helperuser',
      secret: 'helpersecret',
    });
    assert.equal(await runCredentialHelper('fake', 'unknown.example', { env }), undefined);
    // "<token>" as the username means the secret is an identity token
    assert.deepEqual(await runCredentialHelper('fake', 'https://index.docker.io/v1/', { env }), {
      username: '',
      secret: 'hubtoken',
    });
    await assert.rejects(runCredentialHelper('fake', 'broken.example', { env }), (err: unknown) => {
      assert.ok(err instanceof CogError);
      assert.match(
        err.message,
        /docker-credential-fake failed for broken\.example: exit status 2: keychain is locked/,
      );
      return true;
    });
    // a helper that prints credentials and still fails: its answer (JSON, with the secret) is not shown
    await assert.rejects(runCredentialHelper('fake', 'leaky.example', { env }), (err: unknown) => {
      assert.ok(err instanceof CogError);
      assert.match(err.message, /exit status 3$/);
      assert.doesNotMatch(`${err.message} ${err.hint ?? ''}`, /leakedsecret/);
      return true;
    });
    await assert.rejects(runCredentialHelper('absent', 'r.example', { env }), (err: unknown) => {
      assert.ok(err instanceof CogError);
      assert.match(err.message, /docker-credential-absent .*r\.example.*not installed/);
      assert.match(err.hint ?? '', /credsStore\/credHelpers/);
      return true;
    });
  });

  test('credHelpers[host] beats credsStore, which beats auths; Hub asks the helper for the index URL', async () => {
    const config = {
      auths: {
        'helped.example': { auth: b64('file:filepw') },
        'stored.example': { auth: b64('file:filepw') },
      },
      credHelpers: {
        'helped.example': 'fake',
        'https://index.docker.io/v1/': 'fake',
        'nothere.example': 'fake',
      },
      credsStore: 'store',
    };
    assert.deepEqual(await lookup(config, 'helped.example', env), {
      username: 'helperuser',
      secret: 'helpersecret',
    });
    assert.deepEqual(await lookup(config, 'stored.example', env), {
      username: 'storeuser',
      secret: 'storesecret',
    });
    assert.deepEqual(await lookup(config, 'registry-1.docker.io', env), { username: '', secret: 'hubtoken' });
    // the host's helper has nothing: anonymous, not a fallback to credsStore (as docker does)
    assert.equal(await lookup(config, 'nothere.example', env), undefined);
    const log = await readFile(calls, 'utf8');
    assert.match(log, /fake get https:\/\/index\.docker\.io\/v1\//);
    assert.match(log, /store get stored\.example/);
  });

  test('the resolver reads the config once and asks a helper once per registry', async () => {
    const options = await configDir({ credHelpers: { 'helped.example': 'fake' } }, env);
    const resolve = credentialResolver(options);
    const before = (await readFile(calls, 'utf8').catch(() => '')).split('\n').length;
    const answers = await Promise.all([resolve('helped.example'), resolve('https://helped.example/v2/')]);
    assert.deepEqual(answers[0], { username: 'helperuser', secret: 'helpersecret' });
    assert.deepEqual(answers[1], answers[0]);
    const after = (await readFile(calls, 'utf8')).split('\n').length;
    assert.equal(after - before, 1);
  });
});

describe('the Auth session service', () => {
  type Handler = (call: { request: { Host: string } }, callback: grpc.sendUnaryData<unknown>) => void;
  const ask = (handler: Handler, host: string) =>
    new Promise<{ err: grpc.ServiceError | null; value: unknown }>((resolve) =>
      handler({ request: { Host: host } }, (err, value) =>
        resolve({ err: err as grpc.ServiceError | null, value }),
      ),
    );

  test('answers Credentials from the config, anonymous as an empty response, failures as errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cogts-dockercfg-'));
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: { 'r.example': { auth: b64('u:p') } },
        credHelpers: { 'h.example': 'missinghelper' },
      }),
    );
    const seen: string[] = [];
    const handedOut = new Set<string>();
    const service = authService({
      configDir: dir,
      env: { PATH: '/nonexistent' },
      onRequest: (h, o) => seen.push(`${h} ${o}`),
      handedOut,
    });
    assert.equal(service.name, 'moby.filesync.v1.Auth');
    const credentials = service.implementation.Credentials as Handler;
    assert.deepEqual(await ask(credentials, 'r.example'), {
      err: null,
      value: { Username: 'u', Secret: 'p' },
    });
    assert.deepEqual(await ask(credentials, 'other.example'), { err: null, value: {} });
    const failed = await ask(credentials, 'h.example');
    assert.equal(failed.err?.code, 2 /* UNKNOWN */);
    assert.match(failed.err?.details ?? '', /docker-credential-missinghelper.*h\.example/);
    assert.deepEqual(seen, ['r.example credentials', 'other.example anonymous', 'h.example error']);
    // what was handed out, for masking in what the daemon says (the secret, and `user:secret`)
    assert.deepEqual([...handedOut], ['p', 'u:p']);
    // the token authority is left to the daemon: UNIMPLEMENTED means "no authority"
    for (const method of ['GetTokenAuthority', 'VerifyTokenAuthority', 'FetchToken']) {
      const { err } = await ask(service.implementation[method] as Handler, 'r.example');
      assert.equal(err?.code, 12 /* UNIMPLEMENTED */, method);
    }
  });

  test('COG_REGISTRY_USERNAME/PASSWORD answer buildkitd for the push destination only, ahead of config.json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cogts-dockercfg-'));
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { 'push.example:5000': { auth: b64('old:pw') } } }),
    );
    const service = authService({
      configDir: dir,
      env: { COG_REGISTRY_USERNAME: 'ci', COG_REGISTRY_PASSWORD: 'ci-secret' },
      envCredentialsFor: ['Push.Example:5000'],
    });
    const credentials = service.implementation.Credentials as Handler;
    assert.deepEqual((await ask(credentials, 'push.example:5000')).value, {
      Username: 'ci',
      Secret: 'ci-secret',
    });
    // a base image's registry (Docker Hub here) never gets them
    assert.deepEqual((await ask(credentials, 'registry-1.docker.io')).value, {});
    const without = authService({
      configDir: dir,
      env: { COG_REGISTRY_USERNAME: 'ci', COG_REGISTRY_PASSWORD: 'x' },
    });
    assert.deepEqual((await ask(without.implementation.Credentials as Handler, 'push.example:5000')).value, {
      Username: 'old',
      Secret: 'pw',
    });
  });
});

describe('registry auth failures in solve errors', () => {
  const daemonText =
    'failed to load cache key: unexpected status from HEAD request to ' +
    'http://127.0.0.1:5056/v2/cogts-test/private-base/manifests/t1: 401 Unauthorized';

  test('finds the registry host in a daemon error', () => {
    assert.equal(registryHostInError(daemonText), '127.0.0.1:5056');
    assert.equal(
      registryHostInError('failed to authorize: https://registry-1.docker.io/v2/library/x: 401 Unauthorized'),
      'docker.io',
    );
    assert.equal(
      registryHostInError('pull access denied for ghcr.io/owner/img:1.0, repository does not exist'),
      'ghcr.io',
    );
    assert.equal(registryHostInError('process "/bin/sh -c exit 1" did not complete'), undefined);
  });

  test('a push buildkitd cannot deliver (no such host, refused, plain HTTP) names the registry and what to check', () => {
    const dns = new Error(
      'failed to push cog-hello: failed to do request: Head "https://registry-1.docker.io/v2/library/cog-hello/blobs/sha256:ab": dial tcp: lookup registry-1.docker.io: no such host',
    );
    const explained = explainRegistryReachError(dns);
    assert.ok(explained instanceof CogError);
    assert.match(
      explained.message,
      /^buildkitd could not reach registry docker\.io to push \(failed to push/,
    );
    assert.match(
      explained.hint ?? '',
      /check the registry in the image name \(-t, or 'image' in cog\.yaml\)/,
    );
    const http = explainRegistryReachError(
      new Error(
        'failed to push reg.example:5000/a/b: failed to do request: Head "https://reg.example:5000/v2/a/b/blobs/sha256:ab": http: server gave HTTP response to HTTPS client',
      ),
    ) as CogError;
    assert.match(http.hint ?? '', /\[registry\."reg\.example:5000"\] http = true/);
    const other = new Error('process "/bin/sh -c exit 1" did not complete: connection refused');
    assert.equal(explainRegistryReachError(other), other, 'not a push: unchanged');
  });

  test('a 401 becomes an error naming the registry, with a hint; others pass through', () => {
    const original = new Error(daemonText);
    const explained = explainRegistryAuthError(original, { env: { DOCKER_CONFIG: '/cfg' } });
    assert.ok(explained instanceof CogError);
    assert.match(explained.message, /^registry 127\.0\.0\.1:5056 refused access \(/);
    assert.match(explained.hint ?? '', /cog login 127\.0\.0\.1:5056.*\/cfg\/config\.json/);
    assert.equal(explained.cause, original);
    assert.match(explained.hint ?? '', /can read the image$/);
    const pushing = explainRegistryAuthError(new Error(`failed to push: ${daemonText}`));
    assert.ok(pushing instanceof CogError);
    assert.match(pushing.hint ?? '', /can push to the repository$/);
    const other = new Error('process "/bin/sh -c exit 1" did not complete successfully: exit code: 1');
    assert.equal(explainRegistryAuthError(other), other);
  });
});
