/**
 * Marshalling a graph into a `pb.Definition`: ops in dependency order, each once, then the terminal
 * op that names the result. Digests are sha256 of the exact bytes, which match what buildkitd computes.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { pb_Definition, pb_Op, pb_OpMetadata, pb_Platform } from '../gen/types.js';
import { codec } from '../proto/schema.js';
import type { MarshalContext, Output, Vertex } from './vertex.js';

export interface MarshalledOp {
  readonly digest: string;
  readonly bytes: Uint8Array;
  readonly op: pb_Op;
  readonly metadata: pb_OpMetadata;
  readonly kind: string;
}

export interface MarshalledDefinition {
  /** the Definition to send to buildkitd */
  readonly definition: pb_Definition;
  /** every op in `definition.def` order, the terminal op last */
  readonly ops: readonly MarshalledOp[];
  /** digest of the op that produces the result */
  readonly resultDigest: string;
}

export const defaultPlatform: pb_Platform = { OS: 'linux', Architecture: 'amd64' };

export function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export interface MarshalOptions {
  readonly platform?: pb_Platform;
  readonly localUniqueId?: string;
  /** run every op again, ignoring the cache (metadata only: digests do not change) */
  readonly ignoreCache?: boolean;
}

/** Marshals the graph that produces `result`. */
export function marshalDefinition(result: Output, options: MarshalOptions = {}): MarshalledDefinition {
  const ctx: MarshalContext = {
    platform: options.platform ?? defaultPlatform,
    localUniqueId: options.localUniqueId ?? randomUUID(),
  };
  const opCodec = codec('pb.Op');
  const byVertex = new Map<Vertex, MarshalledOp>();
  const byDigest = new Map<string, MarshalledOp>();
  const ordered: MarshalledOp[] = [];

  const visit = (vertex: Vertex, path: ReadonlySet<Vertex>): MarshalledOp => {
    const done = byVertex.get(vertex);
    if (done) return done;
    if (path.has(vertex)) throw new Error(`LLB graph has a cycle through a ${vertex.kind} op`);
    const inner = new Set(path).add(vertex);
    const marshalled = vertex.marshal(ctx);
    const inputs = marshalled.inputs.map((input) => ({
      digest: visit(input.vertex, inner).digest,
      index: input.index,
    }));
    const op: pb_Op = { inputs, ...marshalled.op };
    const bytes = opCodec.encode(op);
    const digest = digestOf(bytes);
    let entry = byDigest.get(digest);
    if (!entry) {
      entry = { digest, bytes, op, metadata: marshalled.metadata, kind: vertex.kind };
      byDigest.set(digest, entry);
      ordered.push(entry);
    }
    byVertex.set(vertex, entry);
    return entry;
  };

  const resultOp = visit(result.vertex, new Set());
  const terminal: pb_Op = { inputs: [{ digest: resultOp.digest, index: result.index }] };
  const terminalBytes = opCodec.encode(terminal);
  const terminalOp: MarshalledOp = {
    digest: digestOf(terminalBytes),
    bytes: terminalBytes,
    op: terminal,
    metadata: {},
    kind: 'terminal',
  };
  const ops = [...ordered, terminalOp];
  const metadata: Record<string, pb_OpMetadata> = {};
  for (const entry of ordered)
    metadata[entry.digest] = options.ignoreCache ? { ...entry.metadata, ignore_cache: true } : entry.metadata;
  return {
    definition: { def: ops.map((o) => o.bytes), metadata },
    ops,
    resultDigest: resultOp.digest,
  };
}

/** Reads a Definition back into ops with their digests (for `cog debug llb` and tests). */
export function readDefinition(definition: pb_Definition): MarshalledOp[] {
  const opCodec = codec('pb.Op');
  const defs = definition.def ?? [];
  return defs.map((bytes, i) => {
    const digest = digestOf(bytes);
    const op = opCodec.decode(bytes);
    const kind = i === defs.length - 1 ? 'terminal' : opKind(op);
    return { digest, bytes, op, metadata: definition.metadata?.[digest] ?? {}, kind };
  });
}

export function opKind(op: pb_Op): string {
  for (const kind of ['exec', 'source', 'file', 'build', 'merge', 'diff', 'passthrough'] as const) {
    if (op[kind] !== undefined) return kind;
  }
  return 'terminal';
}
