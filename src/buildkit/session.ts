/**
 * The session: a gRPC server that lives inside the Control.Session stream. buildkitd dials back through
 * it (HTTP/2 over BytesMessage frames) to call the services the client serves: health always, and
 * FileSync, FileSend, Auth, Secrets when given.
 */
import { unlink } from 'node:fs';
import { type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { BufferPool, encodeAroundPayload } from './buffer-pool.js';
import { type BuildkitClient, messageLimit, newId } from './client.js';
import { methodPaths, serviceDefinition } from './grpc-services.js';
import type { SessionStream } from './session-stream.js';

export interface SessionService {
  /** the full protobuf service name, e.g. `moby.filesync.v1.FileSync` */
  readonly name: string;
  readonly implementation: grpc.UntypedServiceImplementation;
}

/** Room in front of each tunnel read: gRPC's prefix, then the BytesMessage field header. */
export const tunnelHeadroom = 16;
/** Bytes per tunnel read, and so at most per BytesMessage we send. */
const tunnelReadSize = 128 * 1024;
/** BytesMessage.data: field 1, length-delimited. */
export const bytesTag = (1 << 3) | 2;

/**
 * Carries the session's HTTP/2 through a local socket pair instead of a JS Duplex: grpc-js then reads
 * and writes a native socket (Node's JS-stream wrapper cost about 2.5x the CPU per byte). Our end of
 * the pair reads into pooled buffers with room in front, and each read becomes one BytesMessage
 * framed in place: no allocation or copy per read. The buffer is reused once the frame is written.
 */
function bridgeThroughSocket(
  stream: SessionStream,
  injector: ReturnType<grpc.Server['createConnectionInjector']>,
  id: string,
): void {
  stream.pause();
  const path = join(tmpdir(), `cog-${id.slice(0, 12)}.sock`);
  const listener = createServer();
  const frames = new BufferPool(tunnelReadSize, 64, tunnelHeadroom);
  const fail = () => {
    listener.close();
    stream.cancel();
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
          const more = stream.writeInPlace(message, () => frames.give(Buffer.from(read.buffer)));
          // returning false pauses the socket
          if (!more) stream.once('drain', () => client.resume());
          return more;
        },
      },
    });
    client.once('error', fail);
    stream.on('message', (data: Buffer) => {
      if (!client.write(data)) {
        stream.pause();
        client.once('drain', () => stream.resume());
      }
    });
    client.once('end', () => stream.end());
    stream.once('end', () => client.end());
    stream.on('error', () => client.destroy());
    stream.once('close', () => client.destroy());
    client.once('connect', () => stream.resume());
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
    private readonly stream: SessionStream,
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
    const methods: string[] = [];
    for (const service of all) {
      server.addService(serviceDefinition(service.name), service.implementation);
      methods.push(...methodPaths(service.name));
    }
    const stream = client.openSession({
      'x-docker-expose-session-uuid': id,
      'x-docker-expose-session-name': id,
      'x-docker-expose-session-sharedkey': sharedKey,
      'x-docker-expose-session-grpc-method': methods,
    });
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    bridgeThroughSocket(stream, injector, id);
    return new Session(id, stream, server, injector);
  }

  /** Ends the session: half-closes the stream and stops serving. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.end();
    this.injector.destroy();
    this.server.forceShutdown();
    this.stream.cancel();
  }
}
