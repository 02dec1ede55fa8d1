/** gRPC service definitions for grpc-js, built from the proto schema with our deterministic codec. */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { type MessageName, codec, service } from '../proto/schema.js';

/** A grpc-js ServiceDefinition for a service of proto/, e.g. `serviceDefinition('moby.buildkit.v1.Control')`. */
export function serviceDefinition(name: string): ServiceDefinition {
  const svc = service(name);
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of svc.methodsArray) {
    method.resolve();
    const request = codec(method.resolvedRequestType?.fullName.slice(1) as MessageName);
    const response = codec(method.resolvedResponseType?.fullName.slice(1) as MessageName);
    definition[method.name] = {
      path: `/${name}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: (value: unknown) => Buffer.from(request.encode(value as never)),
      requestDeserialize: (bytes: Buffer) => request.decode(bytes),
      responseSerialize: (value: unknown) => Buffer.from(response.encode(value as never)),
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
