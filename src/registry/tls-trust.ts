/**
 * Which certificate authorities the registry client trusts. Node ships its own root list and ignores the
 * system store, so a private registry signed by a company CA fails where docker, crane and skopeo (Go,
 * system roots) succeed. SSL_CERT_FILE — the variable Go and OpenSSL tools already honour — names a PEM
 * bundle whose certificates are trusted in addition to Node's roots (NODE_EXTRA_CA_CERTS keeps working too,
 * since Node reads it itself).
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { CogError } from '../errors.js';

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates in a bundle's text (anything else in the file is ignored). */
export function certificatesIn(text: string): string[] {
  return text.match(pemBlock) ?? [];
}

/**
 * TLS `ca` for undici's connector: undefined when nothing beyond Node's defaults is configured, else
 * Node's roots plus SSL_CERT_FILE's certificates.
 */
export function registryCa(env: NodeJS.ProcessEnv): string[] | undefined {
  const file = env.SSL_CERT_FILE;
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CogError(
      `SSL_CERT_FILE=${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      {
        hint: 'point SSL_CERT_FILE at a PEM file of CA certificates, or unset it',
      },
    );
  }
  const extra = certificatesIn(text);
  if (extra.length === 0) {
    throw new CogError(`SSL_CERT_FILE=${file}: no PEM certificate in it`, {
      hint: 'the file should hold "-----BEGIN CERTIFICATE-----" blocks, e.g. /etc/ssl/certs/ca-certificates.crt',
    });
  }
  return [...rootCertificates, ...extra];
}

/** TLS verification failures, by OpenSSL's error codes as Node reports them. */
const untrustedCodes = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/** A hint for a connection error that is about trusting the registry's certificate, else undefined. */
export function tlsTrustHint(code: string): string | undefined {
  if (untrustedCodes.has(code)) {
    return "the registry's TLS certificate is not signed by a CA cog trusts: set SSL_CERT_FILE (or NODE_EXTRA_CA_CERTS) to a PEM file with its CA certificate";
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return "the registry's TLS certificate does not name this host: use the host name the certificate was issued for";
  }
  if (code === 'CERT_HAS_EXPIRED') return "the registry's TLS certificate has expired";
  return undefined;
}
