// The session as buildkitd's token authority: the Ed25519 key it proves itself with, and the Auth
// service's GetTokenAuthority / VerifyTokenAuthority / FetchToken answers.
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { type RegistryTokenRequest, authService } from '../../src/buildkit/auth.js';
import {
  authorityKey,
  ed25519FromSeed,
  publicKeyBytes,
  signedPayload,
} from '../../src/buildkit/token-authority.js';

describe('the token authority key', () => {
  test('is RFC 8032 Ed25519: test vector 1 gives its public key and signature', () => {
    const key = ed25519FromSeed(
      Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'),
    );
    assert.equal(
      publicKeyBytes(key).toString('hex'),
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
    // NaCl's signed message: the signature, then the message (empty here)
    assert.equal(
      signedPayload(key, new Uint8Array()).toString('hex'),
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
    const signed = signedPayload(key, Buffer.from('payload'));
    assert.equal(signed.subarray(64).toString(), 'payload');
  });

  test('anonymous keys depend on the salt only; a secret makes a key of its own', () => {
    const salt = Buffer.from('daemon salt');
    const anonymous = publicKeyBytes(authorityKey(salt, undefined));
    assert.deepEqual(publicKeyBytes(authorityKey(salt, undefined)), anonymous);
    assert.notDeepEqual(publicKeyBytes(authorityKey(Buffer.from('other salt'), undefined)), anonymous);
    const mine = publicKeyBytes(authorityKey(salt, Buffer.from('secret a')));
    assert.notDeepEqual(mine, anonymous);
    assert.notDeepEqual(publicKeyBytes(authorityKey(salt, Buffer.from('secret b'))), mine);
    assert.equal(mine.length, 32);
  });
});

describe('the Auth service as token authority', () => {
  type Handler = (
    call: { request: Record<string, unknown>; once: (event: string, listener: () => void) => void },
    callback: grpc.sendUnaryData<unknown>,
  ) => void;
  const ask = <T>(handler: unknown, request: Record<string, unknown>) =>
    new Promise<{ err: grpc.ServiceError | null; value: T }>((resolve) =>
      (handler as Handler)({ request, once: () => undefined }, (err, value) =>
        resolve({ err: err as grpc.ServiceError | null, value: value as T }),
      ),
    );

  async function configDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'cogts-authority-'));
    const auth = Buffer.from('user:hunter2').toString('base64');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'tokens.example': { auth } } }));
    return dir;
  }

  test('proves one key per registry: the key it names is the one it signs with', async () => {
    const asked: RegistryTokenRequest[] = [];
    const service = authService({
      configDir: await configDir(),
      env: {},
      tokens: {
        reaches: () => Promise.resolve(true),
        fetch: (request) => {
          asked.push(request);
          return Promise.resolve({ token: 't', expiresIn: 60, issuedAt: 1 });
        },
      },
    });
    const salt = Buffer.from('salt');
    const got = await ask<{ PublicKey: Buffer }>(service.implementation.GetTokenAuthority, {
      Host: 'tokens.example',
      Salt: salt,
    });
    assert.equal(got.err, null);
    assert.equal(got.value.PublicKey.length, 32);
    // with credentials the key is not the anonymous one anybody can derive from the salt
    assert.notDeepEqual(got.value.PublicKey, publicKeyBytes(authorityKey(salt, undefined)));
    const again = await ask<{ PublicKey: Buffer }>(service.implementation.GetTokenAuthority, {
      Host: 'tokens.example',
      Salt: salt,
    });
    assert.deepEqual(again.value.PublicKey, got.value.PublicKey);
    // without credentials for the host: the anonymous key
    const anonymous = await ask<{ PublicKey: Buffer }>(service.implementation.GetTokenAuthority, {
      Host: 'open.example',
      Salt: salt,
    });
    assert.deepEqual(anonymous.value.PublicKey, publicKeyBytes(authorityKey(salt, undefined)));

    const payload = Buffer.from('prove it');
    const verified = await ask<{ Signed: Buffer }>(service.implementation.VerifyTokenAuthority, {
      Host: 'tokens.example',
      Salt: salt,
      Payload: payload,
    });
    const publicKey = createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), got.value.PublicKey]),
      format: 'der',
      type: 'spki',
    });
    const { Signed } = verified.value;
    assert.ok(verify(null, payload, publicKey, Signed.subarray(0, 64)), 'signed with the named key');
    assert.deepEqual(Signed.subarray(64), payload);
    assert.equal(asked.length, 0, 'no token is fetched to name a key');
  });

  test('FetchToken fetches through the token source, and the token is handed out (masked later)', async () => {
    const asked: RegistryTokenRequest[] = [];
    const seen: string[] = [];
    const handedOut = new Set<string>();
    const service = authService({
      configDir: await configDir(),
      env: {},
      handedOut,
      onRequest: (host, outcome) => seen.push(`${host} ${outcome}`),
      tokens: {
        reaches: () => Promise.reject(new Error('FetchToken does not ask')),
        fetch: (request) => {
          asked.push(request);
          if (request.host === 'down.example')
            return Promise.reject(new Error('down.example: token service down'));
          if (request.host === 'quiet.example') return Promise.reject(new Error('no answer'));
          return Promise.resolve({ token: 'issued-token-1', expiresIn: 300, issuedAt: 1700000000 });
        },
      },
    });
    const got = await ask<Record<string, unknown>>(service.implementation.FetchToken, {
      ClientID: 'buildkit-client',
      Host: 'tokens.example',
      Realm: 'https://auth.tokens.example/token',
      Service: 'tokens',
      Scopes: ['repository:a/b:pull,push'],
    });
    assert.equal(got.err, null);
    assert.deepEqual(got.value, { Token: 'issued-token-1', ExpiresIn: 300, IssuedAt: 1700000000 });
    assert.deepEqual(asked, [
      {
        host: 'tokens.example',
        realm: 'https://auth.tokens.example/token',
        service: 'tokens',
        scopes: ['repository:a/b:pull,push'],
      },
    ]);
    assert.deepEqual([...handedOut], ['issued-token-1']);
    const failed = await ask(service.implementation.FetchToken, { Host: 'down.example', Realm: 'x' });
    assert.equal(failed.err?.code, 2 /* UNKNOWN */);
    assert.match(failed.err?.details ?? '', /down\.example: token service down/);
    // a failure that does not name the registry is told with it
    const unnamed = await ask(service.implementation.FetchToken, { Host: 'quiet.example', Realm: 'x' });
    assert.match(unnamed.err?.details ?? '', /^a registry token for quiet\.example: no answer$/);
    assert.deepEqual(seen, ['tokens.example token', 'down.example error', 'quiet.example error']);
  });

  test('BUILDKIT_NO_CLIENT_TOKEN=1 leaves tokens to the daemon, as buildx does', async () => {
    const service = authService({
      configDir: await configDir(),
      env: { BUILDKIT_NO_CLIENT_TOKEN: '1' },
      tokens: {
        reaches: () => Promise.reject(new Error('not asked')),
        fetch: () => Promise.reject(new Error('not asked')),
      },
    });
    for (const method of ['GetTokenAuthority', 'VerifyTokenAuthority', 'FetchToken']) {
      const { err } = await ask(service.implementation[method], { Host: 'tokens.example' });
      assert.equal(err?.code, 12 /* UNIMPLEMENTED */, method);
    }
    // Credentials still answer
    const { value } = await ask(service.implementation.Credentials, { Host: 'tokens.example' });
    assert.deepEqual(value, { Username: 'user', Secret: 'hunter2' });
  });

  test('for a registry this machine does not reach, the daemon is told there is no authority (it fetches itself)', async () => {
    const probed: string[] = [];
    const service = authService({
      configDir: await configDir(),
      env: {},
      tokens: {
        reaches: (host) => {
          probed.push(host);
          return Promise.resolve(host !== 'tokens.example');
        },
        fetch: () => Promise.reject(new Error('not asked')),
      },
    });
    const salt = Buffer.from('salt');
    for (const method of ['GetTokenAuthority', 'VerifyTokenAuthority']) {
      const { err } = await ask(service.implementation[method], { Host: 'tokens.example', Salt: salt });
      assert.equal(err?.code, 12 /* UNIMPLEMENTED */, method);
      assert.match(
        err?.details ?? '',
        /does not reach tokens\.example from this machine: buildkitd fetches its tokens itself/,
      );
    }
    const reached = await ask<{ PublicKey: Buffer }>(service.implementation.GetTokenAuthority, {
      Host: 'open.example',
      Salt: salt,
    });
    assert.equal(reached.err, null);
    assert.equal(reached.value.PublicKey.length, 32);
    // each registry is probed once, however often the daemon asks
    assert.deepEqual(probed, ['tokens.example', 'open.example']);
  });
});
