/**
 * The wire schemas of proto/, loaded once from the generated descriptor, with typed codecs.
 * The schema is a constant: nothing here changes after module load.
 */
import protobuf from 'protobufjs';
import { descriptor } from '../gen/descriptor.js';
import type { Messages } from '../gen/types.js';
import { decodeMessage, encodeMessage } from './codec.js';

// Types resolve lazily, when first used. Root.fromJSON resolves the whole schema up front (every type
// of every proto file, with a generated constructor each), which cost ~40 ms of every CLI start.
// Feature resolution (proto3 defaults such as packed repeated numbers) is cheap and must happen before
// any field is used, so it runs here for the whole tree; protobufjs names it with a leading underscore.
const root = new protobuf.Root().addJSON(descriptor.nested ?? {});
(root as unknown as { _resolveFeaturesRecursive(edition: unknown): void })._resolveFeaturesRecursive(
  (root as unknown as { _edition: unknown })._edition,
);

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
