/**
 * An HTTP proxy in front of a test registry that can misbehave on purpose (seeded, so runs repeat):
 * it cuts PATCH uploads mid-body, answers 500 or 429 (at random or at given request numbers), refuses
 * chunked PATCHes like a registry without chunked uploads, advertises chunk limits and holds to them,
 * answers HEAD 200 for blobs it is told to claim, and can demand Bearer tokens that it issues itself. It counts requests and the body bytes clients send.
 *
 * PATCH bodies are buffered before they are forwarded, so the registry never sees a chunk the client
 * saw fail: this models an edge proxy or CDN that buffers request bodies (the setting chunked uploads are
 * for). Distribution 2.8 drops an upload session when a status request carries a stale offset, which a
 * partially written chunk would cause; registries differ there.
 */
import { randomBytes } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { prng } from './prng.js';

export interface FaultRates {
  /** chance that a PATCH is cut at a random point of its body */
  readonly cutPatch?: number;
  /** chance of a 500 (any request but the token endpoint) */
  readonly status500?: number;
  /** chance of a 429 with Retry-After: 1 */
  readonly status429?: number;
  /** request numbers (1-based, token requests not counted) always answered with 500 or 429 */
  readonly statusAt?: Readonly<Record<number, 500 | 429>>;
  /** PATCH numbers (1-based) that are always cut */
  readonly cutPatchNumbers?: readonly number[];
  /**
   * stream PATCH bodies through instead of buffering them: a cut chunk then reaches the registry in part,
   * which distribution 2.8 answers by dropping the session (the client must start over)
   */
  readonly streamPatches?: boolean;
  /**
   * answer every PATCH that carries a Content-Range with 416, as registries without chunked uploads do;
   * a PATCH without one (the whole blob) goes through
   */
  readonly refuseChunks?: boolean;
  /**
   * blob digests a HEAD is answered 200 for without asking the registry, like a registry whose index
   * lists a blob its storage lost, or a HEAD answered from a cache
   */
  readonly claimBlobs?: readonly string[];
  /**
   * chunk limits to advertise on the answers that open upload sessions (`OCI-Chunk-Min-Length`,
   * `OCI-Chunk-Max-Length`); a chunk longer than `max` is refused with 416, as an edge proxy with a
   * request-body limit would
   */
  readonly chunkLimits?: { readonly min?: number; readonly max?: number };
  /** a request body limit in front of the registry: a PUT or PATCH with a longer body is answered 413 */
  readonly bodyLimit?: number;
  /** answer a PUT of an OCI index with 400 MANIFEST_INVALID, as a registry without OCI indexes does */
  readonly refuseIndexes?: boolean;
}

export interface BearerOptions {
  /** Basic credentials the token endpoint requires; anonymous tokens carry no scopes when set */
  readonly username?: string;
  readonly password?: string;
  /** token lifetime in seconds (default 300) */
  readonly expiresIn?: number;
  /** answer `access_token` instead of `token` */
  readonly accessTokenField?: boolean;
  /** an identity (refresh) token accepted by `POST /token` (grant_type=refresh_token) */
  readonly identityToken?: string;
  /**
   * a token server without the OAuth2 POST (404 to it, as GCR answered): the identity token is taken on
   * GET as the Basic password, with an empty username
   */
  readonly noOAuthPost?: boolean;
  /** name a write scope's actions `push,pull` in challenges (default `pull,push`), as some registries do */
  readonly pushFirst?: boolean;
}

export interface ProxyStats {
  readonly requests: { method: string; path: string; status: number }[];
  /** body bytes received from clients, by method */
  readonly bodyBytes: Record<string, number>;
  readonly faults: { cuts: number; status500: number; status429: number };
  /** token requests: with a password (basic), an identity token (refresh: POST, or GET's fallback) or none */
  readonly tokens: { basic: boolean; refresh: boolean; scopes: string[] }[];
  /** requests turned away for a missing, expired or too-narrow token */
  unauthorized: number;
  /** TCP connections clients opened to the proxy */
  connections: number;
}

export interface FaultProxy {
  /** host:port to use as the registry */
  readonly host: string;
  readonly stats: ProxyStats;
  /** forgets every token issued, as a registry restart or key rotation would */
  revokeTokens(): void;
  close(): Promise<void>;
}

interface Grant {
  readonly expiresAt: number;
  readonly scopes: readonly string[];
}

/** The scope a request needs: pull for reads, push for writes, plus pull on a mount's source. */
function neededScopes(method: string, url: URL): string[] {
  const match = /^\/v2\/(.+?)\/(blobs|manifests|tags)\//.exec(url.pathname);
  if (!match) return [];
  const write = !['GET', 'HEAD'].includes(method);
  const needs = [`repository:${match[1]}:${write ? 'push' : 'pull'}`];
  const from = url.searchParams.get('from');
  if (from) needs.push(`repository:${from}:pull`);
  return needs;
}

function covers(grants: readonly string[], need: string): boolean {
  const [type, repo, action] = need.split(':');
  return grants.some((g) => {
    const [gt, gr, actions] = g.split(':');
    return gt === type && gr === repo && (actions ?? '').split(',').includes(action ?? '');
  });
}

export async function startFaultProxy(
  upstream: string,
  options: { readonly seed?: number; readonly faults?: FaultRates; readonly bearer?: BearerOptions } = {},
): Promise<FaultProxy> {
  const random = prng(options.seed ?? 1);
  const faults = options.faults ?? {};
  const stats: ProxyStats = {
    requests: [],
    bodyBytes: {},
    faults: { cuts: 0, status500: 0, status429: 0 },
    tokens: [],
    unauthorized: 0,
    connections: 0,
  };
  const grants = new Map<string, Grant>();
  let patches = 0;
  let served = 0;
  let self = '';
  const [upHost, upPort] = upstream.split(':');

  const count = (req: IncomingMessage, n: number) => {
    stats.bodyBytes[req.method ?? '?'] = (stats.bodyBytes[req.method ?? '?'] ?? 0) + n;
  };
  const answer = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    headers: Record<string, string>,
    body = '',
  ) => {
    stats.requests.push({ method: req.method ?? '?', path: req.url ?? '', status });
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };

  const issueToken = (req: IncomingMessage, res: ServerResponse, url: URL, form: URLSearchParams) => {
    const bearer = options.bearer!;
    const header = req.headers.authorization ?? '';
    const denied = () =>
      answer(req, res, 401, { 'content-type': 'application/json' }, '{"details":"bad credentials"}');
    let basic = false;
    let refresh = false;
    let asked = url.searchParams.getAll('scope');
    if (req.method === 'POST' && bearer.noOAuthPost) {
      return answer(req, res, 404, { 'content-type': 'text/plain' }, '404 page not found');
    } else if (req.method === 'POST') {
      if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== bearer.identityToken)
        return denied();
      refresh = true;
      asked = (form.get('scope') ?? '').split(' ').filter(Boolean);
    } else if (header.startsWith('Basic ')) {
      const [user, ...pass] = Buffer.from(header.slice(6), 'base64').toString().split(':');
      const identity = bearer.noOAuthPost === true && user === '' && pass.join(':') === bearer.identityToken;
      if (!identity && (user !== bearer.username || pass.join(':') !== bearer.password)) return denied();
      basic = !identity;
      refresh = identity;
    }
    stats.tokens.push({ basic, refresh, scopes: asked });
    // anonymous callers get no scopes when the proxy has users, as a private registry would do
    const granted = bearer.username && !basic && !refresh ? [] : asked;
    const token = randomBytes(16).toString('hex');
    const expiresIn = bearer.expiresIn ?? 300;
    grants.set(token, { expiresAt: Date.now() + expiresIn * 1000, scopes: granted });
    const field = bearer.accessTokenField ? 'access_token' : 'token';
    answer(
      req,
      res,
      200,
      { 'content-type': 'application/json' },
      JSON.stringify({ [field]: token, expires_in: expiresIn }),
    );
  };

  const authorised = (req: IncomingMessage, url: URL): boolean => {
    const header = req.headers.authorization ?? '';
    const grant = header.startsWith('Bearer ') ? grants.get(header.slice(7)) : undefined;
    if (!grant || grant.expiresAt < Date.now()) return false;
    return neededScopes(req.method ?? 'GET', url).every((need) => covers(grant.scopes, need));
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${self}`);
    if (options.bearer && url.pathname === '/token') {
      const body: Buffer[] = [];
      req.on('data', (c: Buffer) => body.push(c));
      req.on('end', () => issueToken(req, res, url, new URLSearchParams(Buffer.concat(body).toString())));
      return;
    }
    if (options.bearer && !authorised(req, url)) {
      stats.unauthorized++;
      req.resume();
      const actions = options.bearer.pushFirst ? ':push,pull' : ':pull,push';
      const needs = neededScopes(req.method ?? 'GET', url).map((s) => s.replace(/:push$/, actions));
      const scope = needs.length ? `,scope="${needs.join(' ')}"` : '';
      return answer(
        req,
        res,
        401,
        {
          'www-authenticate': `Bearer realm="http://${self}/token",service="cog-test"${scope}`,
          'content-type': 'application/json',
        },
        '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
      );
    }
    const claimed = faults.claimBlobs?.find((digest) => url.pathname.endsWith(`/blobs/${digest}`));
    if (req.method === 'HEAD' && claimed) return answer(req, res, 200, { 'docker-content-digest': claimed });
    /** answers a registry error without forwarding; the request body is read (and counted) to its end */
    const refuse = (status: number, code: string, message: string, extra: Record<string, string> = {}) => {
      req.on('data', (c: Buffer) => count(req, c.length));
      return answer(
        req,
        res,
        status,
        { 'content-type': 'application/json', ...extra },
        JSON.stringify({ errors: [{ code, message }] }),
      );
    };
    const forced = faults.statusAt?.[++served];
    const roll = forced === undefined ? random() : 1;
    if (forced === 500 || roll < (faults.status500 ?? 0)) {
      stats.faults.status500++;
      return refuse(500, 'UNKNOWN', 'injected', { connection: 'close' });
    }
    if (forced === 429 || roll < (faults.status500 ?? 0) + (faults.status429 ?? 0)) {
      stats.faults.status429++;
      return refuse(429, 'TOOMANYREQUESTS', 'injected', { connection: 'close', 'retry-after': '1' });
    }
    const isPatch = req.method === 'PATCH';
    const length = Number(req.headers['content-length'] ?? 0);
    if ((isPatch || req.method === 'PUT') && faults.bodyLimit !== undefined && length > faults.bodyLimit) {
      req.on('data', (c: Buffer) => count(req, c.length));
      return answer(req, res, 413, { 'content-type': 'text/html' }, '<h1>413 Request Entity Too Large</h1>');
    }
    if (isPatch && faults.chunkLimits?.max !== undefined && length > faults.chunkLimits.max)
      return refuse(416, 'SIZE_INVALID', 'chunk longer than OCI-Chunk-Max-Length');
    if (isPatch && faults.refuseChunks && req.headers['content-range'] !== undefined)
      return refuse(416, 'BLOB_UPLOAD_INVALID', 'chunked uploads are not supported');
    if (
      req.method === 'PUT' &&
      faults.refuseIndexes &&
      url.pathname.includes('/manifests/') &&
      req.headers['content-type'] === 'application/vnd.oci.image.index.v1+json'
    )
      return refuse(400, 'MANIFEST_INVALID', 'OCI index not supported');
    const patchNumber = isPatch ? ++patches : 0;
    const cut =
      isPatch &&
      length > 0 &&
      (faults.cutPatchNumbers?.includes(patchNumber) || random() < (faults.cutPatch ?? 0))
        ? Math.floor(random() * length)
        : -1;

    const forward = (body: Buffer | undefined, pipe = true) => {
      const headers = { ...req.headers };
      delete headers.authorization;
      const up = request(
        { host: upHost, port: Number(upPort), method: req.method, path: req.url, headers },
        (upRes) => {
          stats.requests.push({
            method: req.method ?? '?',
            path: req.url ?? '',
            status: upRes.statusCode ?? 0,
          });
          const limits: Record<string, string> = {};
          const { min, max } = (req.method === 'POST' && faults.chunkLimits) || {};
          if (min !== undefined) limits['oci-chunk-min-length'] = String(min);
          if (max !== undefined) limits['oci-chunk-max-length'] = String(max);
          res.writeHead(upRes.statusCode ?? 502, { ...upRes.headers, ...limits });
          upRes.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      if (body) up.end(body);
      else if (pipe) req.pipe(up);
      return up;
    };

    if (!isPatch) {
      req.on('data', (c: Buffer) => count(req, c.length));
      return forward(undefined);
    }
    if (faults.streamPatches) {
      const up = forward(undefined, false);
      let received = 0;
      req.on('data', (c: Buffer) => {
        count(req, c.length);
        if (cut >= 0 && received + c.length > cut) {
          up.write(c.subarray(0, cut - received), () => {
            up.destroy();
            req.socket.destroy();
          });
          stats.faults.cuts++;
          req.pause();
          req.removeAllListeners('data');
          received += c.length;
          return;
        }
        received += c.length;
        up.write(c);
      });
      req.on('end', () => up.end());
      return;
    }
    const parts: Buffer[] = [];
    let received = 0;
    let dropped = false;
    req.on('data', (c: Buffer) => {
      if (dropped) return;
      count(req, c.length);
      if (cut >= 0 && received + c.length > cut) {
        dropped = true;
        received += c.length;
        stats.faults.cuts++;
        stats.requests.push({ method: 'PATCH', path: req.url ?? '', status: 0 });
        req.socket.destroy();
        return;
      }
      received += c.length;
      parts.push(c);
    });
    req.on('end', () => {
      if (!req.socket.destroyed) forward(Buffer.concat(parts));
    });
  });
  server.on('connection', () => stats.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host: self,
    stats,
    revokeTokens: () => grants.clear(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
