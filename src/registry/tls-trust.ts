/**
 * What to tell a user whose registry connection failed its TLS checks. Which CAs are trusted, and the
 * variables that add some: ../extra-ca.ts.
 */

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
