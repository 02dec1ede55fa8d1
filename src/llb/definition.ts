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
  // ops another builder marshalled keep their metadata: --no-cache already applied to their solve
  const foreign = new Set<string>();

  const visit = (vertex: Vertex, path: ReadonlySet<Vertex>): MarshalledOp => {
    const done = byVertex.get(vertex);
    if (done) return done;
    if (path.has(vertex)) throw new Error(`LLB graph has a cycle through a ${vertex.kind} op`);
    const inner = new Set(path).add(vertex);
    const pre = vertex.premarshalled;
    if (pre) {
      for (const input of pre.inputs) visit(input, inner);
      let entry = byDigest.get(pre.digest);
      if (!entry) {
        const op = opCodec.decode(pre.bytes);
        entry = { digest: pre.digest, bytes: pre.bytes, op, metadata: pre.metadata, kind: opKind(op) };
        byDigest.set(pre.digest, entry);
        foreign.add(pre.digest);
        ordered.push(entry);
      }
      byVertex.set(vertex, entry);
      return entry;
    }
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
    metadata[entry.digest] =
      options.ignoreCache && !foreign.has(entry.digest)
        ? { ...entry.metadata, ignore_cache: true }
        : entry.metadata;
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

/**
 * The result of a Definition marshalled elsewhere (a frontend's answer to a gateway solve), as an output
 * later ops can build on. Its ops keep their bytes, so they keep their digests and their cache.
 */
export function definitionOutput(definition: pb_Definition): Output {
  const ops = readDefinition(definition);
  const terminal = ops.at(-1);
  const result = terminal?.op.inputs?.[0];
  if (!terminal || terminal.kind !== 'terminal' || !result?.digest)
    throw new Error('the definition names no result');
  const byDigest = new Map(ops.map((o) => [o.digest, o]));
  const vertices = new Map<string, Vertex>();
  const vertexOf = (digest: string, path: ReadonlySet<string>): Vertex => {
    const made = vertices.get(digest);
    if (made) return made;
    const op = byDigest.get(digest);
    if (!op) throw new Error(`the definition lacks op ${digest}`);
    if (path.has(digest)) throw new Error(`the definition has a cycle through ${digest}`);
    const inner = new Set(path).add(digest);
    const inputs = (op.op.inputs ?? []).map((input) => vertexOf(input.digest ?? '', inner));
    const vertex: Vertex = {
      kind: op.kind,
      premarshalled: { bytes: op.bytes, digest: op.digest, metadata: op.metadata, inputs },
      marshal() {
        throw new Error('a premarshalled op is sent as it came');
      },
    };
    vertices.set(digest, vertex);
    return vertex;
  };
  return { vertex: vertexOf(result.digest, new Set()), index: Number(result.index ?? 0) };
}
