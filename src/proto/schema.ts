/**
 * The wire schemas of proto/, loaded once from the generated descriptor, with typed codecs.
 * The schema is a constant: nothing here changes after module load.
 */
import protobuf from 'protobufjs';
import { descriptor } from '../gen/descriptor.js';
import type { Messages } from '../gen/types.js';
import { decodeMessage, encodeMessage } from './codec.js';

const root = protobuf.Root.fromJSON(descriptor);
root.resolveAll();

export type MessageName = keyof Messages;

export interface Codec<T> {
  readonly type: protobuf.Type;
  encode(message: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

const codecs = new Map<string, Codec<unknown>>();

/** A deterministic encoder/decoder for one message type, e.g. `codec('pb.Op')`. */
export function codec<N extends MessageName>(name: N): Codec<Messages[N]> {
  let found = codecs.get(name);
  if (!found) {
    const type = root.lookupType(name);
    found = {
      type,
      encode: (message) => encodeMessage(type, message as object),
      decode: (bytes) => decodeMessage(type, bytes),
    };
    codecs.set(name, found);
  }
  return found as Codec<Messages[N]>;
}

/** A service of the schema, e.g. `service('moby.buildkit.v1.Control')`. */
export function service(name: string): protobuf.Service {
  return root.lookupService(name);
}
