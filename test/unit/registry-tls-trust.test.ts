import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { after, describe, test } from 'node:test';
import { certificatesIn, registryCa, tlsTrustHint } from '../../src/registry/tls-trust.js';

const pem = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`;
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('registry TLS trust', () => {
  test('certificatesIn picks the PEM blocks and ignores the rest', () => {
    const text = `# a bundle\n${pem('AAAA')}\nsome comment\n${pem('BBBB')}\n`;
    assert.deepEqual(certificatesIn(text), [pem('AAAA'), pem('BBBB')]);
    assert.deepEqual(certificatesIn('no certificates here'), []);
  });

  test('no SSL_CERT_FILE: Node defaults (undefined)', () => {
    assert.equal(registryCa({}), undefined);
  });

  test("SSL_CERT_FILE's certificates that Node's roots lack are the extra ones", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cogts-ca-'));
    dirs.push(dir);
    const file = join(dir, 'ca.pem');
    // a system bundle repeats Node's roots (re-wrapped lines and all): only the new one is extra
    const repeated = rootCertificates[0]!.replace(/\n/g, '\r\n');
    await writeFile(file, `${repeated}\n${pem('CCCC')}\n${rootCertificates[1]!}\n`);
    assert.deepEqual(registryCa({ SSL_CERT_FILE: file }), [pem('CCCC')]);
  });

  test('a missing or certificate-less SSL_CERT_FILE is an error naming the variable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cogts-ca-'));
    dirs.push(dir);
    assert.throws(
      () => registryCa({ SSL_CERT_FILE: join(dir, 'absent.pem') }),
      /SSL_CERT_FILE=.*absent\.pem: cannot read it \(ENOENT\)/,
    );
    const empty = join(dir, 'empty.pem');
    await writeFile(empty, 'not a certificate\n');
    assert.throws(
      () => registryCa({ SSL_CERT_FILE: empty }),
      /SSL_CERT_FILE=.*empty\.pem: no PEM certificate in it/,
    );
  });

  test('trust failures get a hint naming SSL_CERT_FILE; other errors get none', () => {
    assert.match(tlsTrustHint('SELF_SIGNED_CERT_IN_CHAIN') ?? '', /SSL_CERT_FILE/);
    assert.match(tlsTrustHint('UNABLE_TO_VERIFY_LEAF_SIGNATURE') ?? '', /SSL_CERT_FILE/);
    assert.match(tlsTrustHint('ERR_TLS_CERT_ALTNAME_INVALID') ?? '', /does not name this host/);
    assert.equal(tlsTrustHint('ECONNREFUSED'), undefined);
  });
});
