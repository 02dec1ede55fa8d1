/**
 * The Control.Session stream spoken directly over Node's HTTP/2, on a connection of its own, instead
 * of through grpc-js. Every byte of every session transfer passes here: framing the messages in place
 * (gRPC's 5-byte prefix and BytesMessage's field header written into headroom in front of the data)
 * saves grpc-js's copy and allocation per message and its per-message JavaScript, which showed as a
 * large share of a FileSync transfer's CPU.
 *
 * Wire facts: a POST to /moby.buildkit.v1.Control/Session with content-type application/grpc and
 * `te: trailers`; metadata as headers (repeated keys as repeated headers); each message is
 * [compressed flag 0][uint32 big-endian length][protobuf]; the status is in the trailers
 * (grpc-status, grpc-message).
 */
import { EventEmitter } from 'node:events';
import * as http2 from 'node:http2';
import { connect as netConnect } from 'node:net';
import { BuildkitError } from './errors.js';

/** Where the daemon listens, as the session stream needs it. */
export type SessionEndpoint =
  | { readonly kind: 'unix'; readonly path: string; readonly display: string }
  | {
      readonly kind: 'tcp';
      readonly host: string;
      readonly port: number;
      readonly display: string;
      readonly tls?: {
        readonly ca?: Buffer;
        readonly cert?: Buffer;
        readonly key?: Buffer;
        readonly servername?: string;
      };
    };

/** Bytes in front of a message for gRPC's length prefix. */
export const grpcPrefixLength = 5;

/** gRPC's status codes that matter here. */
const grpcCancelled = 1;

/** Metadata for the stream: a header per key, repeated keys as arrays. */
export type StreamMetadata = Readonly<Record<string, string | readonly string[]>>;

/**
 * One Control.Session call. Emits 'message' (a BytesMessage's data, a view valid until the listener
 * returns), 'drain', 'end' (the daemon closed the stream cleanly), 'error' (a BuildkitError) and
 * 'close' (the connection is gone).
 */
export class SessionStream extends EventEmitter {
  private readonly connection: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  /** incoming bytes not yet a whole message */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private finished = false;

  constructor(endpoint: SessionEndpoint, metadata: StreamMetadata) {
    super();
    this.connection = connectEndpoint(endpoint);
    this.connection.on('error', (err) => this.fail(err, endpoint.display));
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': '/moby.buildkit.v1.Control/Session',
      'content-type': 'application/grpc',
      te: 'trailers',
    };
    for (const [key, value] of Object.entries(metadata)) headers[key] = value as string | string[];
    this.stream = this.connection.request(headers);
    this.stream.on('data', (chunk: Buffer) => this.receive(chunk));
    this.stream.on('drain', () => this.emit('drain'));
    this.stream.on('response', (responseHeaders) => this.checkStatus(responseHeaders, false));
    this.stream.on('trailers', (trailers) => this.checkStatus(trailers, true));
    this.stream.on('error', (err) => this.fail(err, endpoint.display));
    this.stream.on('close', () => {
      if (!this.finished) this.finish();
      this.connection.close();
    });
    this.connection.on('close', () => this.emit('close'));
  }

  /**
   * Sends `message` (an encoded BytesMessage) that sits in its ArrayBuffer with at least
   * `grpcPrefixLength` bytes of headroom in front, which this overwrites with the gRPC prefix. `done`
   * runs once the bytes are handed to the socket (the buffer may then be reused). False: wait for
   * 'drain'.
   */
  writeInPlace(message: Buffer, done: () => void): boolean {
    if (message.byteOffset < grpcPrefixLength) throw new Error('no headroom for the gRPC prefix');
    const frame = Buffer.from(
      message.buffer,
      message.byteOffset - grpcPrefixLength,
      message.length + grpcPrefixLength,
    );
    frame[0] = 0;
    frame.writeUInt32BE(message.length, 1);
    return this.stream.write(frame, () => done());
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  /** Half-closes: no more messages from us. */
  end(): void {
    if (!this.stream.closed) this.stream.end();
  }

  /** Aborts the call and drops the connection. */
  cancel(): void {
    this.finished = true;
    if (!this.stream.closed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.connection.destroy();
  }

  private receive(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingLength += chunk.length;
    while (this.pendingLength >= grpcPrefixLength) {
      const head = this.peek(grpcPrefixLength);
      const length = head.readUInt32BE(1);
      if (this.pendingLength < grpcPrefixLength + length) return;
      const frame = this.take(grpcPrefixLength + length);
      if (head[0] !== 0) {
        this.fail(new Error('compressed message on the session stream'), '');
        return;
      }
      const data = bytesMessageData(frame.subarray(grpcPrefixLength));
      if (data.length > 0) this.emit('message', data);
    }
  }

  /** The first `n` pending bytes, without consuming them. */
  private peek(n: number): Buffer {
    const first = this.pending[0] as Buffer;
    return first.length >= n ? first : Buffer.concat(this.pending, this.pendingLength).subarray(0, n);
  }

  /** Consumes `n` pending bytes: a view when they lie in one chunk. */
  private take(n: number): Buffer {
    const first = this.pending[0] as Buffer;
    if (first.length >= n) {
      if (first.length === n) this.pending.shift();
      else this.pending[0] = first.subarray(n);
      this.pendingLength -= n;
      return first.subarray(0, n);
    }
    const all = Buffer.concat(this.pending, this.pendingLength);
    this.pending = all.length > n ? [all.subarray(n)] : [];
    this.pendingLength -= n;
    return all.subarray(0, n);
  }

  private checkStatus(headers: http2.IncomingHttpHeaders, trailers: boolean): void {
    const status = headers['grpc-status'];
    if (status === undefined) {
      const httpStatus = Number(headers[':status'] ?? 200);
      if (!trailers && httpStatus !== 200) {
        this.fail(new Error(`HTTP status ${headers[':status']}`), '');
      }
      return;
    }
    const code = Number(status);
    if (code === 0 || code === grpcCancelled) {
      this.finish();
      return;
    }
    const message = decodeURIComponent(String(headers['grpc-message'] ?? `gRPC status ${code}`));
    this.fail(new BuildkitError(`session: ${message}`), '');
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.emit('end');
  }

  private fail(err: Error, where: string): void {
    if (this.finished) return;
    this.finished = true;
    const error =
      err instanceof BuildkitError
        ? err
        : new BuildkitError(
            `session stream to buildkitd${where ? ` at ${where}` : ''} failed: ${err.message}`,
            {
              cause: err,
            },
          );
    // an 'error' without a listener would throw: the caller may have stopped listening after close
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.connection.destroy();
  }
}

function connectEndpoint(endpoint: SessionEndpoint): http2.ClientHttp2Session {
  const settings = { initialWindowSize: 4 * 1024 * 1024 };
  if (endpoint.kind === 'unix') {
    const path = endpoint.path;
    return http2.connect('http://localhost', { settings, createConnection: () => netConnect(path) });
  }
  const authority = `${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
  if (!endpoint.tls) return http2.connect(`http://${authority}`, { settings });
  return http2.connect(`https://${authority}`, {
    settings,
    ALPNProtocols: ['h2'],
    ...(endpoint.tls.ca ? { ca: endpoint.tls.ca } : {}),
    ...(endpoint.tls.cert ? { cert: endpoint.tls.cert } : {}),
    ...(endpoint.tls.key ? { key: endpoint.tls.key } : {}),
    ...(endpoint.tls.servername ? { servername: endpoint.tls.servername } : {}),
  });
}

/** The data field (1) of an encoded BytesMessage, as a view. */
export function bytesMessageData(message: Buffer): Buffer {
  let at = 0;
  let data: Buffer = Buffer.alloc(0);
  while (at < message.length) {
    const [key, afterKey] = readVarint(message, at);
    const wireType = key & 7;
    at = afterKey;
    if (wireType === 2) {
      const [length, afterLength] = readVarint(message, at);
      if (key >>> 3 === 1) data = message.subarray(afterLength, afterLength + length);
      at = afterLength + length;
    } else if (wireType === 0) {
      at = readVarint(message, at)[1];
    } else if (wireType === 1) {
      at += 8;
    } else if (wireType === 5) {
      at += 4;
    } else {
      throw new Error(`unexpected wire type ${wireType} in a BytesMessage`);
    }
  }
  return data;
}

function readVarint(bytes: Buffer, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[at++];
    if (byte === undefined) throw new Error('truncated varint in a BytesMessage');
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, at];
    scale *= 0x80;
  }
}
