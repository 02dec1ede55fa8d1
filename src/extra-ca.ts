/**
 * Certificate authorities cog-ts trusts beyond Node's own roots. Node ships its own root list and ignores
 * the system store, so a private registry or buildkitd signed by a company CA fails where docker, crane
 * and skopeo (Go, system roots) succeed. Two variables add certificates:
 *
 * - SSL_CERT_FILE, the variable Go and OpenSSL tools already honour: a PEM bundle;
 * - NODE_EXTRA_CA_CERTS, Node's own. bin/cog holds it back from Node's start-up (Node would parse the
 *   whole file before running any JavaScript, ~60 ms per command for a system bundle) and hands it over
 *   as COG_NODE_EXTRA_CA_CERTS; its certificates are added here, when a TLS connection is set up. When
 *   Node is started without bin/cog, Node reads NODE_EXTRA_CA_CERTS itself and nothing is added here.
 *
 * A bundle mostly repeats Node's roots; only the certificates Node lacks are kept.
 */
import { readFileSync } from 'node:fs';
import { type SecureContext, createSecureContext, rootCertificates } from 'node:tls';
import { CogError } from './errors.js';

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates in a bundle's text (anything else in the file is ignored). */
export function certificatesIn(text: string): string[] {
  return text.match(pemBlock) ?? [];
}

/** The certificates of the PEM bundle `file`, which `variable` named; errors name the variable. */
function bundleCertificates(variable: string, file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CogError(
      `${variable}=${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      { hint: `point ${variable} at a PEM file of CA certificates, or unset it` },
    );
  }
  const certificates = certificatesIn(text);
  if (certificates.length === 0) {
    throw new CogError(`${variable}=${file}: no PEM certificate in it`, {
      hint: 'the file should hold "-----BEGIN CERTIFICATE-----" blocks, e.g. /etc/ssl/certs/ca-certificates.crt',
    });
  }
  return certificates;
}

/**
 * The certificates SSL_CERT_FILE and the held-back NODE_EXTRA_CA_CERTS add to Node's roots (those Node's
 * roots lack); undefined when neither is set.
 */
export function extraCaCertificates(env: NodeJS.ProcessEnv): string[] | undefined {
  const sources: [variable: string, file: string][] = [];
  if (env.SSL_CERT_FILE) sources.push(['SSL_CERT_FILE', env.SSL_CERT_FILE]);
  if (env.COG_NODE_EXTRA_CA_CERTS) sources.push(['NODE_EXTRA_CA_CERTS', env.COG_NODE_EXTRA_CA_CERTS]);
  if (sources.length === 0) return undefined;
  const body = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '');
  const known = new Set(rootCertificates.map(body));
  const extra: string[] = [];
  for (const [variable, file] of sources) {
    for (const pem of bundleCertificates(variable, file)) {
      const key = body(pem);
      if (known.has(key)) continue;
      known.add(key);
      extra.push(pem);
    }
  }
  return extra;
}

/**
 * A TLS context trusting Node's roots plus `extraCaCertificates`: undefined when nothing beyond Node's
 * defaults is configured. Made once per client: handing Node's ~140 roots and a ~140-certificate bundle
 * to every connection as `ca` parsed all of them each time (~60 ms here); this parses only the
 * certificates Node lacks, once.
 */
export function secureContextWithExtraCa(env: NodeJS.ProcessEnv): SecureContext | undefined {
  return secureContextWith(extraCaCertificates(env));
}

/** A TLS context trusting Node's roots plus `extra` (see secureContextWithExtraCa); undefined for none. */
export function secureContextWith(extra: readonly string[] | undefined): SecureContext | undefined {
  if (extra === undefined) return undefined;
  const context = createSecureContext();
  const native = (context as unknown as { context?: { addCACert?: (pem: string) => void } }).context;
  // the native context's addCACert (what `ca` uses) copies the shared root store before adding
  if (typeof native?.addCACert !== 'function')
    return createSecureContext({ ca: [...rootCertificates, ...extra] });
  for (const pem of extra) native.addCACert(pem);
  return context;
}
