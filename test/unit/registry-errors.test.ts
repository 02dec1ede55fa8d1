// What a registry's error body becomes in the message and hint the user reads.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { Dispatcher } from 'undici';
import { RegistryClient, RegistryError, defaultRetryPolicy } from '../../src/registry/index.js';
import { errorEntry, responseError } from '../../src/registry/errors.js';

const answer = (status: number, body: unknown) =>
  ({
    statusCode: status,
    headers: {},
    body: Readable.from([Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))]),
  }) as unknown as Dispatcher.ResponseData;

const ctx = {
  what: 'pushing manifest r/m:latest',
  method: 'PUT',
  url: 'https://reg.example/v2/r/m/manifests/latest?_state=secret',
  registry: 'reg.example',
  repository: 'r/m',
};

test('a code the message does not say is shown, and so is a detail that is text', () => {
  assert.equal(errorEntry('MANIFEST_UNKNOWN', 'manifest unknown', { Tag: 'latest' }), 'manifest unknown');
  assert.equal(
    errorEntry('MANIFEST_BLOB_UNKNOWN', 'blob unknown to registry', 'sha256:abc'),
    'blob unknown to registry [MANIFEST_BLOB_UNKNOWN]: sha256:abc',
  );
  assert.equal(
    errorEntry('MANIFEST_INVALID', 'manifest invalid', { message: 'layer size 10, descriptor says 12' }),
    'manifest invalid: layer size 10, descriptor says 12',
  );
  assert.equal(errorEntry('DENIED', '', [{ Type: 'repository' }]), 'DENIED');
  assert.equal(errorEntry(undefined, '', 'detail alone'), '');
});

test('a refused manifest names the missing blob and hints at what happened, not at the reference', async () => {
  const err = await responseError(
    answer(400, {
      errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry', detail: 'sha256:4f2a' }],
    }),
    ctx,
  );
  assert.equal(
    err.message,
    'pushing manifest r/m:latest: PUT https://reg.example/v2/r/m/manifests/latest answered HTTP 400 (blob unknown to registry [MANIFEST_BLOB_UNKNOWN]: sha256:4f2a)',
  );
  assert.deepEqual(err.codes, ['MANIFEST_BLOB_UNKNOWN']);
  assert.match(err.hint ?? '', /does not hold a blob the manifest names/);
  const name = await responseError(
    answer(400, { errors: [{ code: 'NAME_INVALID', message: 'invalid repository name' }] }),
    ctx,
  );
  assert.match(name.message, /\(invalid repository name \[NAME_INVALID\]\)$/);
  assert.match(name.hint ?? '', /does not accept r\/m as a repository name/);
});

test('a body that is not the spec error shape leaves the status alone', async () => {
  const err = await responseError(answer(502, '<html>Bad Gateway</html>'), ctx);
  assert.equal(
    err.message,
    'pushing manifest r/m:latest: PUT https://reg.example/v2/r/m/manifests/latest answered HTTP 502',
  );
  assert.match(err.hint ?? '', /internal problem/);
});

test('what we sent the registry is masked in what it says, also where its text is cut short', async () => {
  const secret = 'hunter2-secret-value';
  const basic = Buffer.from(`ann:${secret}`).toString('base64');
  // the detail is cut at 200 characters: the secret straddles the cut
  const detail = `${'x'.repeat(190)}${secret} and Basic ${basic}`;
  const err = await responseError(answer(403, { errors: [{ code: 'DENIED', message: 'denied', detail }] }), {
    ...ctx,
    secrets: [secret, `ann:${secret}`],
  });
  assert.ok(!err.message.includes('hunter2'), err.message);
  assert.ok(err.message.includes(`${'x'.repeat(190)}***`), err.message);
  assert.equal(err.said, `denied: ${`${'x'.repeat(190)}*** and Basic ***`.slice(0, 200)}`);
});

test('a redirect is named as one; a request about no repository hints at the address, not a reference', async () => {
  const ping = {
    what: 'checking registry reg.example',
    method: 'GET',
    url: 'https://reg.example/v2/',
    registry: 'reg.example',
  };
  const moved = await responseError(answer(301, ''), ping);
  assert.equal(
    moved.hint,
    'reg.example answered with a redirect, where a registry answers the API itself; check the registry address',
  );
  const teapot = await responseError(answer(418, ''), ping);
  assert.equal(teapot.hint, 'the registry rejected the request; check the registry address');
  assert.match(
    (await responseError(answer(418, ''), ctx)).hint ?? '',
    /check the reference and the registry address/,
  );
});

test('a redirect names where it points, without the user-info and query it may carry', async () => {
  const ping = {
    what: 'checking registry reg.example',
    method: 'GET',
    url: 'https://reg.example/v2/',
    registry: 'reg.example',
  };
  const moved = (location: string, secrets: string[] = []) =>
    responseError(
      {
        statusCode: 302,
        headers: { location },
        body: Readable.from([Buffer.from('moved')]),
      } as unknown as Dispatcher.ResponseData,
      { ...ping, secrets },
    );
  assert.equal(
    (await moved('https://ann:hunter2@login.example.com/v2/?token=abc123')).message,
    'checking registry reg.example: GET https://reg.example/v2/ answered HTTP 302, a redirect to https://login.example.com/v2/',
  );
  // a relative Location is on the registry's own host
  assert.match((await moved('/login')).message, /, a redirect to https:\/\/reg\.example\/login$/);
  // a secret we sent is masked in the path too
  assert.match(
    (await moved('https://sso.example/s3cr3t-tok/x', ['s3cr3t-tok'])).message,
    /a redirect to https:\/\/sso\.example\/\*\*\*\/x$/,
  );
  // no Location: the status alone, as before
  assert.equal(
    (await responseError(answer(301, ''), ping)).message,
    'checking registry reg.example: GET https://reg.example/v2/ answered HTTP 301',
  );
});

test('a registry whose /v2/ redirects: the ping error says where to', async () => {
  const server = createServer((_req, res) => {
    res.writeHead(307, { location: 'https://user:pw-9f8e@portal.example.net/v2/?session=s-77' });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const client = new RegistryClient({ env: {}, retry: { ...defaultRetryPolicy, attempts: 1 } });
    await assert.rejects(
      client.checkAnswers(registry),
      (err: unknown) =>
        err instanceof RegistryError &&
        err.status === 307 &&
        err.message ===
          `checking registry ${registry}: GET http://${registry}/v2/ answered HTTP 307, a redirect to https://portal.example.net/v2/` &&
        !/pw-9f8e|s-77|user/.test(err.message) &&
        /answered with a redirect/.test(err.hint ?? ''),
    );
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
