/** gRPC service definitions for grpc-js, built from the proto schema with our deterministic codec. */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { type MessageName, codec, service } from '../proto/schema.js';

/**
 * Methods whose messages pass through as raw Buffers, undecoded: FileSend.DiffCopy carries BytesMessage
 * frames for tar/oci/docker exports but fsutil Packets for local exports, so its handler decodes per kind.
 */
const rawMethods: ReadonlySet<string> = new Set(['/moby.filesync.v1.FileSend/DiffCopy']);

const identity = (bytes: unknown) => bytes as Buffer;

/** A Buffer over freshly encoded bytes, without copying them. */
const view = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * A message the caller encoded itself (bulk data framed in place, see buffer-pool.ts) is written as a
 * Buffer and passes through. Decoded messages are plain objects, never Buffers.
 */
function preEncoded(value: unknown): Buffer | undefined {
  return Buffer.isBuffer(value) ? value : undefined;
}

/** A grpc-js ServiceDefinition for a service of proto/, e.g. `serviceDefinition('moby.buildkit.v1.Control')`. */
export function serviceDefinition(name: string): ServiceDefinition {
  const svc = service(name);
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of svc.methodsArray) {
    method.resolve();
    const path = `/${name}/${method.name}`;
    if (rawMethods.has(path)) {
      definition[method.name] = {
        path,
        requestStream: method.requestStream === true,
        responseStream: method.responseStream === true,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
        originalName: method.name,
      };
      continue;
    }
    const requestName = method.resolvedRequestType?.fullName.slice(1) as MessageName;
    const request = codec(requestName);
    const response = codec(method.resolvedResponseType?.fullName.slice(1) as MessageName);
    definition[method.name] = {
      path,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: (value: unknown) => preEncoded(value) ?? view(request.encode(value as never)),
      requestDeserialize: (bytes: Buffer) => request.decode(bytes),
      responseSerialize: (value: unknown) => preEncoded(value) ?? view(response.encode(value as never)),
      responseDeserialize: (bytes: Buffer) => response.decode(bytes),
      originalName: method.name,
    };
  }
  return definition;
}

/** Every method path of a service, as the session advertises them (`/pkg.Service/Method`). */
export function methodPaths(name: string): string[] {
  return service(name).methodsArray.map((m) => `/${name}/${m.name}`);
}
