/**
 * One HEAD of a manifest, without credentials, over plain HTTP with Node's own client: for a check that
 * asks a registry on this machine (or on the COG_INSECURE_REGISTRIES list) a single question, such as
 * the up-to-date check of `cog build --push`. Loading the undici-based RegistryClient, and its HTTPS
 * attempt before the plain-HTTP fallback, costs several times the request itself there.
 *
 * Nothing secret is sent, so asking over plain HTTP first is safe. Only a clear answer counts: 200 with
 * a Docker-Content-Digest, or 404. Anything else (a registry that wants credentials, speaks only TLS,
 * redirects, is slow or is not there) is `unknown`, and the caller asks the full client.
 */

export type ProbeAnswer =
  | { readonly kind: 'found'; readonly digest: string }
  | { readonly kind: 'missing' }
  | { readonly kind: 'unknown' };

export interface ProbeTarget {
  /** host[:port] as the API is reached */
  readonly host: string;
  readonly repository: string;
  /** a tag or digest */
  readonly reference: string;
  /** the Accept header */
  readonly accept: string;
}

const unknown: ProbeAnswer = { kind: 'unknown' };

function hostAndPort(host: string): { hostname: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  if (!m) return undefined;
  return { hostname: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 80 };
}

/** HEAD http://HOST/v2/REPOSITORY/manifests/REFERENCE, answered within `timeoutMs`. */
export async function probeManifest(target: ProbeTarget, timeoutMs = 2_000): Promise<ProbeAnswer> {
  const where = hostAndPort(target.host);
  if (!where) return unknown;
  // loaded here: the up-to-date check imports this module for pushes and local-store builds alike
  const { request } = await import('node:http');
  return new Promise((resolve) => {
    const req = request(
      {
        ...where,
        method: 'HEAD',
        path: `/v2/${target.repository}/manifests/${target.reference}`,
        headers: { accept: target.accept, 'user-agent': 'cog-ts' },
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        const digest = res.headers['docker-content-digest'];
        if (res.statusCode === 200 && typeof digest === 'string' && digest.startsWith('sha256:'))
          resolve({ kind: 'found', digest });
        else if (res.statusCode === 404) resolve({ kind: 'missing' });
        else resolve(unknown);
      },
    );
    // a promise resolves once: whichever of these comes first decides, the rest are no-ops
    req.on('timeout', () => req.destroy());
    req.on('error', () => {
      resolve(unknown);
      req.destroy();
    });
    req.on('close', () => resolve(unknown));
    req.end();
  });
}
