/**
 * The session: a gRPC server that lives inside the Control.Session stream. buildkitd dials back through
 * it (HTTP/2 over BytesMessage frames) to call the services the client serves: health always, and
 * FileSync, FileSend, Auth, Secrets when given.
 */
import { unlink } from 'node:fs';
import { type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { moby_buildkit_v1_BytesMessage } from '../gen/types.js';
import { BufferPool, encodeAroundPayload } from './buffer-pool.js';
import { type BuildkitClient, messageLimit, newId } from './client.js';
import { methodPaths, serviceDefinition } from './grpc-services.js';

export interface SessionService {
  /** the full protobuf service name, e.g. `moby.filesync.v1.FileSync` */
  readonly name: string;
  readonly implementation: grpc.UntypedServiceImplementation;
}

/** A Duplex of raw bytes carried in the BytesMessage frames of the session stream. */
class SessionTunnel extends Duplex {
  constructor(
    private readonly call: grpc.ClientDuplexStream<
      moby_buildkit_v1_BytesMessage,
      moby_buildkit_v1_BytesMessage
    >,
  ) {
    super();
    call.on('data', (message: moby_buildkit_v1_BytesMessage) => {
      if (message.data && message.data.length > 0 && !this.push(Buffer.from(message.data))) call.pause();
    });
    call.on('end', () => this.push(null));
    call.on('error', (err: grpc.ServiceError) => {
      if (err.code === grpc.status.CANCELLED) this.push(null);
      else this.destroy(err);
    });
  }

  override _read(): void {
    this.call.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.call.write({ data: chunk })) callback();
    else this.call.once('drain', () => callback());
  }

  /** Everything written since the last send goes out as one message (HTTP/2 writes many small frames). */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    const data =
      chunks.length === 1
        ? (chunks[0] as { chunk: Buffer }).chunk
        : Buffer.concat(chunks.map((c) => c.chunk));
    if (this.call.write({ data })) callback();
    else this.call.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.call.end();
    callback();
  }
}

type SessionCall = grpc.ClientDuplexStream<moby_buildkit_v1_BytesMessage, moby_buildkit_v1_BytesMessage>;

/** Room in front of each tunnel read for the BytesMessage field header (tag + length varint). */
export const tunnelHeadroom = 8;
/** Bytes per tunnel read, and so at most per BytesMessage we send. */
const tunnelReadSize = 128 * 1024;
/** BytesMessage.data: field 1, length-delimited. */
export const bytesTag = (1 << 3) | 2;

/**
 * Carries the session's HTTP/2 through a local socket pair instead of a JS Duplex: grpc-js then reads
 * and writes a native socket (Node's JS-stream wrapper cost about 2.5x the CPU per byte). Our end of
 * the pair reads into pooled buffers with room in front, and each read becomes one BytesMessage
 * encoded in place: no allocation or copy per read. The buffer is reused once grpc-js has framed it.
 */
function bridgeThroughSocket(
  call: SessionCall,
  injector: ReturnType<grpc.Server['createConnectionInjector']>,
  id: string,
): void {
  call.pause();
  const path = join(tmpdir(), `cog-${id.slice(0, 12)}.sock`);
  const listener = createServer();
  const frames = new BufferPool(tunnelReadSize, 64, tunnelHeadroom);
  const fail = (err: Error) => {
    listener.close();
    call.cancel();
    void err;
  };
  listener.once('error', fail);
  listener.once('connection', (serverSide: Socket) => {
    listener.close();
    unlink(path, () => {});
    injector.injectConnection(serverSide);
  });
  listener.listen(path, () => {
    const client = connect({
      path,
      onread: {
        buffer: () => frames.takeNow().subarray(tunnelHeadroom),
        callback: (nread: number, read: Uint8Array): boolean => {
          const frame = Buffer.from(read.buffer, read.byteOffset - tunnelHeadroom, tunnelHeadroom + nread);
          const message = encodeAroundPayload(frame, tunnelHeadroom, nread, [], bytesTag);
          const more = call.write(message as moby_buildkit_v1_BytesMessage, () =>
            frames.give(
              Buffer.from(read.buffer, read.byteOffset - tunnelHeadroom, frames.headroom + frames.payload),
            ),
          );
          // returning false pauses the socket
          if (!more) call.once('drain', () => client.resume());
          return more;
        },
      },
    });
    client.once('error', fail);
    call.on('data', (message: moby_buildkit_v1_BytesMessage) => {
      if (!message.data || message.data.length === 0) return;
      if (!client.write(message.data)) {
        call.pause();
        client.once('drain', () => call.resume());
      }
    });
    client.once('end', () => call.end());
    call.once('end', () => client.end());
    call.once('error', () => client.destroy());
    client.once('connect', () => call.resume());
  });
}

const healthService: SessionService = {
  name: 'grpc.health.v1.Health',
  implementation: {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
      callback(null, { status: 1 }),
  },
};

export class Session {
  private closed = false;

  private constructor(
    readonly id: string,
    private readonly call: grpc.ClientDuplexStream<
      moby_buildkit_v1_BytesMessage,
      moby_buildkit_v1_BytesMessage
    >,
    private readonly server: grpc.Server,
    private readonly injector: ReturnType<grpc.Server['createConnectionInjector']>,
  ) {}

  /** Opens a session serving `services` (plus health). `sharedKey` keeps local transfers incremental. */
  static start(client: BuildkitClient, services: readonly SessionService[] = [], sharedKey = ''): Session {
    const id = newId();
    const all = [healthService, ...services];
    const server = new grpc.Server({
      'grpc.max_receive_message_length': messageLimit,
      'grpc.max_send_message_length': messageLimit,
    });
    const metadata = new grpc.Metadata();
    metadata.set('x-docker-expose-session-uuid', id);
    metadata.set('x-docker-expose-session-name', id);
    metadata.set('x-docker-expose-session-sharedkey', sharedKey);
    for (const service of all) {
      server.addService(serviceDefinition(service.name), service.implementation);
      for (const path of methodPaths(service.name)) metadata.add('x-docker-expose-session-grpc-method', path);
    }
    const call = client.openSession(metadata);
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    if (process.env.COG_SESSION_TUNNEL === 'js') injector.injectConnection(new SessionTunnel(call));
    else bridgeThroughSocket(call, injector, id);
    return new Session(id, call, server, injector);
  }

  /** Ends the session: half-closes the stream and stops serving. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.call.end();
    this.injector.destroy();
    this.server.forceShutdown();
    this.call.cancel();
  }
}
