import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { after, describe, test } from 'node:test';
import { certificatesIn, extraCaCertificates } from '../../src/extra-ca.js';

const pem = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`;
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-ca-'));
  dirs.push(dir);
  return dir;
}

describe('CAs trusted beyond Node’s roots', () => {
  test('certificatesIn picks the PEM blocks and ignores the rest', () => {
    const text = `# a bundle\n${pem('AAAA')}\nsome comment\n${pem('BBBB')}\n`;
    assert.deepEqual(certificatesIn(text), [pem('AAAA'), pem('BBBB')]);
    assert.deepEqual(certificatesIn('no certificates here'), []);
  });

  test('neither variable: Node defaults (undefined); NODE_EXTRA_CA_CERTS alone is Node’s to read', () => {
    assert.equal(extraCaCertificates({}), undefined);
    // without bin/cog, Node read NODE_EXTRA_CA_CERTS at start-up: nothing to add
    assert.equal(extraCaCertificates({ NODE_EXTRA_CA_CERTS: '/nonexistent.pem' }), undefined);
  });

  test("SSL_CERT_FILE's certificates that Node's roots lack are the extra ones", async () => {
    const file = join(await tempDir(), 'ca.pem');
    // a system bundle repeats Node's roots (re-wrapped lines and all): only the new one is extra
    const repeated = rootCertificates[0]!.replace(/\n/g, '\r\n');
    await writeFile(file, `${repeated}\n${pem('CCCC')}\n${rootCertificates[1]!}\n`);
    assert.deepEqual(extraCaCertificates({ SSL_CERT_FILE: file }), [pem('CCCC')]);
  });

  test('the NODE_EXTRA_CA_CERTS bin/cog held back is added, once, beside SSL_CERT_FILE', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'ssl.pem'), `${pem('CCCC')}\n${pem('DDDD')}\n`);
    await writeFile(join(dir, 'node.pem'), `${pem('DDDD')}\n${rootCertificates[2]!}\n${pem('EEEE')}\n`);
    assert.deepEqual(extraCaCertificates({ COG_NODE_EXTRA_CA_CERTS: join(dir, 'node.pem') }), [
      pem('DDDD'),
      pem('EEEE'),
    ]);
    assert.deepEqual(
      extraCaCertificates({
        SSL_CERT_FILE: join(dir, 'ssl.pem'),
        COG_NODE_EXTRA_CA_CERTS: join(dir, 'node.pem'),
      }),
      [pem('CCCC'), pem('DDDD'), pem('EEEE')],
    );
  });

  test('a missing or certificate-less file is an error naming the variable the user set', async () => {
    const dir = await tempDir();
    assert.throws(
      () => extraCaCertificates({ SSL_CERT_FILE: join(dir, 'absent.pem') }),
      /SSL_CERT_FILE=.*absent\.pem: cannot read it \(ENOENT\)/,
    );
    const empty = join(dir, 'empty.pem');
    await writeFile(empty, 'not a certificate\n');
    assert.throws(
      () => extraCaCertificates({ SSL_CERT_FILE: empty }),
      /SSL_CERT_FILE=.*empty\.pem: no PEM certificate in it/,
    );
    assert.throws(
      () => extraCaCertificates({ COG_NODE_EXTRA_CA_CERTS: empty }),
      /^CogError: NODE_EXTRA_CA_CERTS=.*empty\.pem: no PEM certificate in it/,
    );
  });
});
