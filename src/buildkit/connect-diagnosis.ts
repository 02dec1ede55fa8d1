/**
 * Why a connection to buildkitd failed, said in words: grpc-js only reports that the channel is in
 * TRANSIENT_FAILURE, and would keep retrying until the deadline. One plain socket connection to the
 * same endpoint tells "nothing listens" from "no such host" from "something answered, but not gRPC".
 */
import { connect } from 'node:net';
import type { SessionEndpoint } from './session-stream.js';

const reasons: Record<string, string> = {
  ECONNREFUSED: 'connection refused (nothing listens there)',
  ENOENT: 'no socket there',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be resolved',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  EACCES:
    'permission denied (the socket belongs to another user: run as that user, or use rootless buildkitd)',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'the connection timed out',
};

/** A reason for an OS error code, or the error's own message. */
export function connectFailureReason(err: NodeJS.ErrnoException): string {
  return (err.code && reasons[err.code]) ?? err.message;
}

/**
 * Opens and closes one socket to `endpoint`: the failure's reason, or, when the socket opens, that
 * the failure lies above TCP (TLS, or a server that does not speak buildkitd's HTTP/2 gRPC).
 */
export function diagnoseConnectFailure(endpoint: SessionEndpoint, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket =
      endpoint.kind === 'unix'
        ? connect({ path: endpoint.path })
        : connect({ host: endpoint.host, port: endpoint.port });
    const done = (reason: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs / 1000}s`), timeoutMs);
    socket.once('connect', () =>
      done(
        endpoint.kind === 'tcp' && endpoint.tls
          ? 'the TCP connection opens, but no TLS gRPC session starts: check --tlscacert/--tlscert/--tlskey and that it is buildkitd'
          : 'the connection opens, but no gRPC session starts: is it buildkitd (with TLS, pass --tlscacert)?',
      ),
    );
    socket.once('error', (err: NodeJS.ErrnoException) => done(connectFailureReason(err)));
  });
}
