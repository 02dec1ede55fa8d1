// A base image in a registry that needs a login builds only when the session's Auth service has the
// credentials: from config.json auths, from a credential helper, or given directly.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { after, before, test } from 'node:test';
import { type AuthServiceOptions, authService, explainRegistryAuthError } from '../../src/buildkit/auth.js';
import { BuildkitClient } from '../../src/buildkit/client.js';
import { Session } from '../../src/buildkit/session.js';
import { solve } from '../../src/buildkit/solve.js';
import { CogError } from '../../src/errors.js';
import { image } from '../../src/llb/index.js';
import { writeCredentialHelper } from '../support/docker-config.js';
import { execOk } from '../support/exec.js';
import { ensureTestbed, type Testbed } from '../support/testbed.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

let tb: Testbed;
let client: BuildkitClient;
/** the private copy of the base image, under a tag new to this run so nothing cached stands in for the pull */
let privateRef: string;

before(async () => {
  tb = await ensureTestbed();
  client = await BuildkitClient.connect(tb.buildkitHost);
  privateRef = `${tb.authRegistry}/cogts-test/private-base:${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  await execOk(
    'skopeo',
    [
      'copy',
      '-q',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${tb.authUser}:${tb.authPassword}`,
      `docker://${tb.registry}/library/python:3.11-slim`,
      `docker://${privateRef}`,
    ],
    { env: tb.env },
  );
});

/** temp dirs holding test credentials, removed at the end */
const tempDir = tempDirsRemovedAfterTests();

after(() => client.close());

/** A DOCKER_CONFIG directory holding `config` as config.json. */
async function dockerConfig(config: unknown): Promise<string> {
  const dir = await tempDir('cogts-auth-cfg-');
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/**
 * Builds FROM the private image a step that prints a product only the running step knows; resolves with
 * the hosts the Auth service was asked about, rejects with the solve's error.
 */
async function buildFromPrivate(options: AuthServiceOptions): Promise<{ asked: string[]; output: string }> {
  const [a, b] = [randomInt(1000, 9999), randomInt(1000, 9999)];
  const asked: string[] = [];
  const logs: string[] = [];
  const definition = image(privateRef)
    .run({ shell: `echo "product=$((${a} * ${b}))"`, ignoreCache: true })
    .root()
    .marshal().definition;
  const session = Session.start(client, [
    authService({ ...options, onRequest: (host, outcome) => asked.push(`${host} ${outcome}`) }),
  ]);
  try {
    await solve(client, {
      definition,
      session,
      onStatus: (s) => {
        for (const l of s.logs ?? []) logs.push(Buffer.from(l.msg ?? []).toString());
      },
    });
  } catch (err) {
    throw Object.assign(err as Error, { asked });
  } finally {
    session.close();
  }
  const output = logs.join('');
  assert.ok(output.includes(`product=${a * b}`), `the step ran on the private base image:\n${output}`);
  return { asked, output };
}

/** Asserts a build from the private image fails on authorization, naming the registry. */
async function assertRefused(options: AuthServiceOptions, expectedOutcome: string) {
  await assert.rejects(buildFromPrivate(options), (err: Error & { asked?: string[] }) => {
    // the daemon really asked the registry (and us) rather than using a cached answer
    assert.ok(err.asked?.includes(`${tb.authRegistry} ${expectedOutcome}`), JSON.stringify(err.asked));
    assert.ok(err.message.includes(tb.authRegistry), err.message);
    assert.match(err.message, /401 Unauthorized/);
    const explained = explainRegistryAuthError(err, { configDir: options.configDir ?? '' });
    assert.ok(explained instanceof CogError);
    assert.ok(explained.message.startsWith(`registry ${tb.authRegistry} refused access`), explained.message);
    assert.ok(explained.hint?.includes(`cog login ${tb.authRegistry}`));
    assert.ok(explained.hint?.includes(join(options.configDir ?? '', 'config.json')));
    return true;
  });
}

test(
  'without credentials the pull is refused, and the error names the registry',
  { timeout: 300_000 },
  async () => {
    await assertRefused({ configDir: await dockerConfig({}), env: {} }, 'anonymous');
  },
);

test(
  'with config.json auths for the registry the build runs on the private image',
  { timeout: 300_000 },
  async () => {
    const auth = Buffer.from(`${tb.authUser}:${tb.authPassword}`).toString('base64');
    const configDir = await dockerConfig({ auths: { [`http://${tb.authRegistry}/v2/`]: { auth } } });
    const { asked, output } = await buildFromPrivate({ configDir, env: {} });
    assert.ok(asked.includes(`${tb.authRegistry} credentials`), JSON.stringify(asked));
    assert.ok(!output.includes(tb.authPassword));
  },
);

test('a credential helper named in credHelpers supplies the credentials', { timeout: 300_000 }, async () => {
  const bin = await tempDir('cogts-auth-helper-');
  await writeCredentialHelper(bin, 'cogtstest', {
    host: tb.authRegistry,
    username: tb.authUser,
    secret: tb.authPassword,
  });
  const configDir = await dockerConfig({ credHelpers: { [tb.authRegistry]: 'cogtstest' } });
  const env = { PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` };
  const { asked } = await buildFromPrivate({ configDir, env });
  assert.ok(asked.includes(`${tb.authRegistry} credentials`), JSON.stringify(asked));
});

test(
  'wrong credentials given directly are refused, even after a successful pull',
  { timeout: 300_000 },
  async () => {
    await assertRefused(
      {
        configDir: await dockerConfig({}),
        env: {},
        extra: { [tb.authRegistry]: { username: tb.authUser, password: 'wrong-password' } },
      },
      'credentials',
    );
  },
);

test(
  'a failing credential helper fails the build naming the helper and the registry',
  { timeout: 300_000 },
  async () => {
    const bin = await tempDir('cogts-auth-helper-');
    await writeFile(
      join(bin, 'docker-credential-cogtsbroken'),
      '#!/bin/sh\necho "keychain is locked" >&2\nexit 3\n',
    );
    await chmod(join(bin, 'docker-credential-cogtsbroken'), 0o755);
    const configDir = await dockerConfig({ credsStore: 'cogtsbroken' });
    await assert.rejects(
      buildFromPrivate({ configDir, env: { PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` } }),
      (err: Error) => {
        assert.match(
          err.message,
          /docker-credential-cogtsbroken failed for 127\.0\.0\.1:\d+: exit status 3: keychain is locked/,
        );
        assert.ok(err.message.includes(tb.authRegistry));
        return true;
      },
    );
  },
);
