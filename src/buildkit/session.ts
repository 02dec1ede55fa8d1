/**
 * The session: a gRPC server that lives inside the Control.Session stream. buildkitd dials back through
 * it (HTTP/2 over BytesMessage frames) to call the services the client serves: health always, and
 * FileSync, FileSend, Auth, Secrets when given.
 */
import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { moby_buildkit_v1_BytesMessage } from '../gen/types.js';
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

  override _final(callback: (error?: Error | null) => void): void {
    this.call.end();
    callback();
  }
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
    injector.injectConnection(new SessionTunnel(call));
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
