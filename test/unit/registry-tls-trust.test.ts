import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tlsTrustHint } from '../../src/registry/tls-trust.js';

describe('registry TLS trust', () => {
  test('trust failures get a hint naming SSL_CERT_FILE; other errors get none', () => {
    assert.match(tlsTrustHint('SELF_SIGNED_CERT_IN_CHAIN') ?? '', /SSL_CERT_FILE/);
    assert.match(tlsTrustHint('UNABLE_TO_VERIFY_LEAF_SIGNATURE') ?? '', /SSL_CERT_FILE/);
    assert.match(tlsTrustHint('ERR_TLS_CERT_ALTNAME_INVALID') ?? '', /does not name this host/);
    assert.equal(tlsTrustHint('ECONNREFUSED'), undefined);
  });
});
