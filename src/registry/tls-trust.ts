/**
 * Which certificate authorities the registry client trusts. Node ships its own root list and ignores the
 * system store, so a private registry signed by a company CA fails where docker, crane and skopeo (Go,
 * system roots) succeed. SSL_CERT_FILE — the variable Go and OpenSSL tools already honour — names a PEM
 * bundle whose certificates are trusted in addition to Node's roots (NODE_EXTRA_CA_CERTS keeps working too,
 * since Node reads it itself).
 */
import { readFileSync } from 'node:fs';
import { type SecureContext, createSecureContext, rootCertificates } from 'node:tls';
import { CogError } from '../errors.js';

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates in a bundle's text (anything else in the file is ignored). */
export function certificatesIn(text: string): string[] {
  return text.match(pemBlock) ?? [];
}

/**
 * SSL_CERT_FILE's certificates that Node's roots lack: undefined when the variable is unset. A system
 * bundle mostly repeats Node's roots; only the rest needs parsing (see `registrySecureContext`).
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
  const body = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '');
  const known = new Set(rootCertificates.map(body));
  return extra.filter((pem) => !known.has(body(pem)));
}

/**
 * The TLS context for undici's connector: undefined when nothing beyond Node's defaults is configured,
 * else Node's roots (NODE_EXTRA_CA_CERTS included) plus SSL_CERT_FILE's. Made once per client: handing
 * Node's ~140 roots and a ~140-certificate bundle to every connection as `ca` parsed all of them each
 * time (~60 ms here); this parses only the certificates Node lacks, once.
 */
export function registrySecureContext(env: NodeJS.ProcessEnv): SecureContext | undefined {
  const extra = registryCa(env);
  if (extra === undefined) return undefined;
  const context = createSecureContext();
  const native = (context as unknown as { context?: { addCACert?: (pem: string) => void } }).context;
  // the native context's addCACert (what `ca` uses) copies the shared root store before adding
  if (typeof native?.addCACert !== 'function')
    return createSecureContext({ ca: [...rootCertificates, ...extra] });
  for (const pem of extra) native.addCACert(pem);
  return context;
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
