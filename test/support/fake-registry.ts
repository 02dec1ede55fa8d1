/**
 * A small in-memory OCI registry on 127.0.0.1 (plain HTTP, no auth) for unit tests of the upload paths:
 * ping, blob HEAD, upload sessions (POST, PATCH with or without Content-Range, GET status, PUT ?digest=,
 * DELETE) and manifest PUT. It can misbehave on purpose:
 * - `refuseChunks`: a PATCH with Content-Range gets 416 (a registry without chunked uploads);
 * - `refuseCommits`: every PUT ?digest= gets 400;
 * - `redirectBlobHeads`: a HEAD for a held blob gets 307 to another host;
 * - `loseSessionAtPatch`: PATCH numbers (1-based) that find their session gone (404);
 * - `relativeLocations`: session Locations relative to the request (`7?_state=1`);
 * - `maxChunk`: `OCI-Chunk-Max-Length` on the POST that opens a session; longer chunks get 416;
 * - `keepHalfOfPatch`: PATCH numbers (1-based) whose body is read in full, but only its first half is kept
 *   before answering `halfPatchAnswer`: 500 (the client must resume from an offset below what it sent),
 *   or 202 with no Range (the client believes the whole chunk landed; its next PATCH gets 416).
 * Every request is logged with the headers that matter.
 */
import { createHash } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRegistryOptions {
  readonly refuseChunks?: boolean;
  readonly keepHalfOfPatch?: readonly number[];
  readonly halfPatchAnswer?: 500 | 202;
  /** answer every PUT that commits an upload with 400, as for a digest the registry rejects */
  readonly refuseCommits?: boolean;
  /** answer a HEAD for a blob it holds with 307 to another host, as a registry on object storage does */
  readonly redirectBlobHeads?: boolean;
  /** PATCH numbers (1-based) for which the registry forgets the session and answers `lostSessionAnswer` */
  readonly loseSessionAtPatch?: readonly number[];
  /** 404 (BLOB_UPLOAD_UNKNOWN, the default) or 400 (BLOB_UPLOAD_INVALID) */
  readonly lostSessionAnswer?: 404 | 400;
  /** answer upload Locations relative to the request's URL (`7?_state=…`), not as absolute paths */
  readonly relativeLocations?: boolean;
  /** `OCI-Chunk-Max-Length` stated on the answers that open sessions; longer chunks get 416 */
  readonly maxChunk?: number;
}

export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly contentRange: string | undefined;
  readonly bodyBytes: number;
}

export interface FakeRegistry {
  /** host:port to use as the registry */
  readonly host: string;
  readonly log: LoggedRequest[];
  /** committed blobs by digest */
  readonly blobs: Map<string, Buffer>;
  readonly manifests: Map<string, Buffer>;
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const log: LoggedRequest[] = [];
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, Buffer>();
  const sessions = new Map<string, Buffer>();
  let nextSession = 0;
  let patches = 0;

  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const contentRange = req.headers['content-range'];
    const answer = (status: number, headers: Record<string, string> = {}, text = '') => {
      log.push({ method, path: url.pathname, status, contentRange, bodyBytes: body.length });
      res.writeHead(status, { 'content-length': String(Buffer.byteLength(text)), ...headers });
      res.end(text);
    };
    const held = (id: string) => {
      const bytes = sessions.get(id)!;
      return {
        location: options.relativeLocations ? `${id}?_state=${bytes.length}` : `/v2/repo/blobs/uploads/${id}`,
        range: `0-${Math.max(0, bytes.length - 1)}`,
      };
    };
    if (url.pathname === '/v2/') return answer(200);
    let m = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (m && method === 'HEAD') {
      if (!blobs.has(m[2]!)) return answer(404);
      if (options.redirectBlobHeads)
        return answer(307, { location: `http://storage.invalid/${m[2]!}?sig=1` });
      return answer(200, {
        'docker-content-digest': m[2]!,
        'content-length': String(blobs.get(m[2]!)!.length),
      });
    }
    if (/^\/v2\/.+\/blobs\/uploads\/$/.test(url.pathname) && method === 'POST') {
      const id = String(++nextSession);
      sessions.set(id, Buffer.alloc(0));
      const limits: Record<string, string> =
        options.maxChunk === undefined ? {} : { 'oci-chunk-max-length': String(options.maxChunk) };
      return answer(202, { location: held(id).location, range: '0-0', ...limits });
    }
    m = /^\/v2\/.+\/blobs\/uploads\/(\d+)$/.exec(url.pathname);
    if (m) {
      const id = m[1]!;
      const bytes = sessions.get(id);
      if (!bytes) return answer(404);
      if (method === 'GET') {
        const { location, range } = held(id);
        return answer(204, { location, range });
      }
      if (method === 'DELETE') {
        sessions.delete(id);
        return answer(204);
      }
      if (method === 'PATCH') {
        const number = ++patches;
        if (options.loseSessionAtPatch?.includes(number)) {
          sessions.delete(id);
          return answer(options.lostSessionAnswer ?? 404);
        }
        if (contentRange !== undefined) {
          if (options.refuseChunks) return answer(416);
          if (options.maxChunk !== undefined && body.length > options.maxChunk) return answer(416);
          const start = Number(/^(\d+)-/.exec(contentRange)?.[1]);
          if (start !== bytes.length) return answer(416, { range: held(id).range });
        }
        if (options.keepHalfOfPatch?.includes(number)) {
          sessions.set(id, Buffer.concat([bytes, body.subarray(0, Math.floor(body.length / 2))]));
          return options.halfPatchAnswer === 202 ? answer(202, { location: held(id).location }) : answer(500);
        }
        sessions.set(id, Buffer.concat([bytes, body]));
        return answer(202, held(id));
      }
      if (method === 'PUT') {
        if (options.refuseCommits) return answer(400);
        const all = Buffer.concat([bytes, body]);
        const digest = url.searchParams.get('digest') ?? '';
        if (sha256(all) !== digest)
          return answer(
            400,
            { 'content-type': 'application/json' },
            JSON.stringify({
              errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' }],
            }),
          );
        sessions.delete(id);
        blobs.set(digest, all);
        return answer(201, { location: `/v2/repo/blobs/${digest}`, 'docker-content-digest': digest });
      }
    }
    m = /^\/v2\/.+\/manifests\/(.+)$/.exec(url.pathname);
    if (m && method === 'PUT') {
      manifests.set(m[1]!, body);
      return answer(201, { 'docker-content-digest': sha256(body) });
    }
    return answer(405);
  };

  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(parts)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    blobs,
    manifests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
