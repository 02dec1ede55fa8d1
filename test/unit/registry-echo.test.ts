// A registry (or its token service) that echoes back what we sent in its error body: the credentials
// and tokens are masked in every error the registry client builds, not only in `cog login`.
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { maskingSecrets } from '../../src/progress/mask.js';
import { RegistryClient, RegistryError, defaultRetryPolicy, getManifest } from '../../src/registry/index.js';
import { redactError } from '../../src/registry/redact.js';
import { BuildkitError } from '../../src/buildkit/errors.js';

const creds = { username: 'ann', secret: 'pa55-wörd-7' };
const token = 'tok-4f9a1c2e8b7d';

/**
 * Basic: every manifest GET is refused with the Authorization header and the decoded credentials in its
 * detail. Bearer: the token service echoes the credentials when it refuses (repository `refused/...`),
 * and the registry echoes the token it was sent.
 */
async function echoingRegistry(scheme: 'basic' | 'bearer') {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const auth = req.headers.authorization ?? '';
    const decoded = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : '';
    const refuse = (status: number, code: string, detail: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      // JSON.stringify writes ö as it is; a Go server would write \u00f6 (both are masked)
      res.end(JSON.stringify({ errors: [{ code, message: `refused ${code.toLowerCase()}`, detail }] }));
    };
    if (req.url?.startsWith('/token')) {
      if (req.url.includes('refused'))
        return refuse(401, 'UNAUTHORIZED', `bad ${auth} for ${decoded} (secret ${creds.secret})`);
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ token }));
    }
    if (req.url === '/v2/' || !auth) {
      res.writeHead(401, {
        'www-authenticate':
          scheme === 'basic'
            ? 'Basic realm="echo"'
            : `Bearer realm="http://${req.headers.host}/token",service="echo"`,
      });
      return res.end();
    }
    refuse(
      403,
      'DENIED',
      `you sent ${auth} (${decoded}); escaped: ${JSON.stringify(creds.secret).replace('ö', '\\u00f6')}`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What must never show: the secret, `user:secret` in base64 (with and without padding), the token. */
function assertMasked(text: string) {
  const basic = Buffer.from(`${creds.username}:${creds.secret}`).toString('base64');
  for (const leak of [creds.secret, 'pa55-w', basic, basic.replace(/=+$/, ''), token, 'u00f6rd'])
    assert.ok(!text.includes(leak), `${JSON.stringify(leak)} shows in: ${text}`);
}

const client = () =>
  new RegistryClient({
    env: {},
    keychain: { resolve: () => Promise.resolve(creds) },
    retry: { ...defaultRetryPolicy, attempts: 1 },
  });

describe('a registry that echoes credentials or tokens', () => {
  const servers: Awaited<ReturnType<typeof echoingRegistry>>[] = [];
  before(async () => {
    servers.push(await echoingRegistry('basic'), await echoingRegistry('bearer'));
  });
  after(async () => {
    for (const server of servers) await server.close();
  });

  for (const [i, scheme] of ['basic', 'bearer'].entries())
    test(`${scheme}: the refusal is shown, with what was sent masked`, async () => {
      const c = client();
      try {
        await assert.rejects(
          getManifest(c, { registry: servers[i]!.host, repository: 'a/b' }, 'v1'),
          (err: unknown) => {
            assert.ok(err instanceof RegistryError);
            assert.equal(err.status, 403);
            assert.match(err.message, /refused denied \[DENIED\]: you sent (Basic|Bearer) \*\*\*/);
            assertMasked(err.message);
            assertMasked(err.said);
            return true;
          },
        );
      } finally {
        await c.close();
      }
    });

  test('bearer: a token service that echoes the credentials when it refuses them', async () => {
    const c = client();
    try {
      await assert.rejects(
        getManifest(c, { registry: servers[1]!.host, repository: 'refused/b' }, 'v1'),
        (err: unknown) => {
          assert.ok(err instanceof RegistryError);
          assert.equal(err.status, 401);
          assert.match(
            err.message,
            /getting a token .*refused unauthorized \[UNAUTHORIZED\]: bad Basic \*\*\*/,
          );
          assertMasked(err.message);
          return true;
        },
      );
    } finally {
      await c.close();
    }
  });
});

describe('what buildkitd passes on from a registry that echoes the credentials', () => {
  const words = `failed to push r.example/a:b: denied - you sent Basic ${Buffer.from(`ann:${creds.secret}`).toString('base64')}`;
  const secrets = [creds.secret, `ann:${creds.secret}`];

  test("a step's error is masked before it is shown; a status without errors is passed as it is", () => {
    let handedOut: string[] = [];
    const mask = maskingSecrets(() => handedOut);
    const status = {
      vertexes: [{ digest: 'd1', name: 'exporting to image', error: words }, { digest: 'd2' }],
    };
    assert.equal(mask(status), status, 'nothing handed out yet: nothing to mask');
    handedOut = secrets;
    const masked = mask(status);
    assert.equal(masked.vertexes?.[0]?.error, 'failed to push r.example/a:b: denied - you sent Basic ***');
    assert.equal(masked.vertexes?.[0]?.name, 'exporting to image');
    assert.equal(masked.vertexes?.[1], status.vertexes[1]);
    assert.equal(status.vertexes[0]?.error, words, 'the status given is not changed');
    const quiet = { vertexes: [{ digest: 'd3', name: 'x' }] };
    assert.equal(mask(quiet), quiet);
  });

  test('the final error is masked, its causes (what --debug prints) and gRPC details too', () => {
    const grpcError = Object.assign(new Error(`2 UNKNOWN: ${words}`), { details: words });
    const err = new BuildkitError(`registry r.example refused access (${words})`, {
      cause: grpcError,
      hint: 'log in',
    });
    assert.equal(redactError(err, secrets), err);
    for (const text of [
      err.message,
      err.stack ?? '',
      grpcError.message,
      grpcError.stack ?? '',
      grpcError.details,
    ])
      assertMasked(text);
    assert.match(err.message, /you sent Basic \*\*\*\)$/);
    assert.equal(err.hint, 'log in');
  });
});
