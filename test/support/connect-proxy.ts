// A forward proxy for the tests: it takes CONNECT tunnels (what a client opens for https URLs) and
// requests in absolute form (`GET http://host:port/path`, what a client sends for http URLs, as Go's
// net/http and curl do), and connects them to where `route` says, so a host name no resolver knows (for
// the client) can stand for a test bed registry. With `credentials` it asks for Proxy-Authorization
// (407 without). It counts the tunnels it opened and the requests it passed on, by the target the
// client asked for.
import { Buffer } from 'node:buffer';
import { type IncomingMessage, type ServerResponse, createServer, request } from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';

export interface ConnectProxy {
  /** http://127.0.0.1:port (with user:password@ when the proxy asks for credentials) */
  readonly url: string;
  /** CONNECT targets (host:port as asked), one entry per tunnel opened */
  readonly tunnels: string[];
  /** the host:port of each request in absolute form passed on */
  readonly forwarded: string[];
  /** requests refused: 407 (credentials), 502 (no route) or 405 (neither CONNECT nor absolute form) */
  readonly refused: number[];
  close(): Promise<void>;
}

export async function startConnectProxy(options: {
  /** host:port asked for → host:port to connect to, or undefined for 502 */
  readonly route: (target: string) => string | undefined;
  readonly credentials?: { readonly user: string; readonly password: string };
}): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const forwarded: string[] = [];
  const refused: number[] = [];
  const sockets = new Set<Socket>();
  const expected = options.credentials
    ? `Basic ${Buffer.from(`${options.credentials.user}:${options.credentials.password}`).toString('base64')}`
    : undefined;
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const target = URL.canParse(req.url ?? '') ? new URL(req.url!) : undefined;
    if (target?.protocol !== 'http:') {
      refused.push(405);
      res.writeHead(405, { connection: 'close' }).end('this proxy takes CONNECT or http:// URLs only\n');
      return;
    }
    if (expected && req.headers['proxy-authorization'] !== expected) {
      refused.push(407);
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    const to = options.route(target.host);
    const colon = to?.lastIndexOf(':') ?? -1;
    if (!to || colon < 0) {
      refused.push(502);
      res.writeHead(502).end();
      return;
    }
    forwarded.push(target.host);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = request(
      {
        host: to.slice(0, colon),
        port: Number(to.slice(colon + 1)),
        method: req.method,
        path: `${target.pathname}${target.search}`,
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  // (no time limit on a request: a chunk of a large blob may take minutes)
  const server = createServer({ requestTimeout: 0 }, forward);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    if (expected && req.headers['proxy-authorization'] !== expected) {
      refused.push(407);
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n\r\n',
      );
      return;
    }
    const to = options.route(target);
    const colon = to?.lastIndexOf(':') ?? -1;
    if (!to || colon < 0) {
      refused.push(502);
      client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      return;
    }
    tunnels.push(target);
    const upstream = connect(Number(to.slice(colon + 1)), to.slice(0, colon), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', end);
    client.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const auth = options.credentials
    ? `${encodeURIComponent(options.credentials.user)}:${encodeURIComponent(options.credentials.password)}@`
    : '';
  return {
    url: `http://${auth}127.0.0.1:${port}`,
    tunnels,
    forwarded,
    refused,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
