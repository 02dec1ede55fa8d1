/**
 * The graph underneath LLB states: a Vertex is one op; an Output is one of its results. Vertices are
 * immutable and marshal to `pb.Op` plus metadata; a Definition is the graph marshalled once, at the edge.
 */
import type { pb_Op, pb_OpMetadata, pb_Platform } from '../gen/types.js';

/** One result of a vertex: `index` is the op's output index (0 for every op but multi-mount execs). */
export interface Output {
  readonly vertex: Vertex;
  readonly index: number;
}

/** What a vertex needs to know at marshal time. */
export interface MarshalContext {
  /** the platform ops default to, e.g. from the worker's first platform */
  readonly platform: pb_Platform;
  /** a value unique to this marshal, for `local://` sources that must not be shared between clients */
  readonly localUniqueId: string;
}

export interface MarshalledVertex {
  /** the op, with its inputs listed as outputs; the marshaller turns them into digests */
  readonly op: Omit<pb_Op, 'inputs'>;
  readonly inputs: readonly Output[];
  readonly metadata: pb_OpMetadata;
}

export interface Vertex {
  /** a short description used in errors and `cog debug` */
  readonly kind: string;
  marshal(ctx: MarshalContext): MarshalledVertex;
  /**
   * An op another builder marshalled (e.g. a frontend's solved graph): sent with its bytes, and so
   * its digest, exactly as they came; `inputs` are the ops it names, in its input order.
   */
  readonly premarshalled?: {
    readonly bytes: Uint8Array;
    readonly digest: string;
    readonly metadata: pb_OpMetadata;
    readonly inputs: readonly Vertex[];
  };
}

/** Step names, progress groups and caching hints: the metadata every op may carry. */
export interface StepOptions {
  /** the step's name in progress output (`llb.customname`) */
  readonly name?: string;
  /** groups steps in progress output */
  readonly progressGroup?: { readonly id: string; readonly name: string; readonly weak?: boolean };
  /** run the step even when a cached result exists */
  readonly ignoreCache?: boolean;
  /** free-form description entries (keys like `llb.customname`, `com.docker.dockerfile.v1.command`) */
  readonly description?: Readonly<Record<string, string>>;
}

export function stepMetadata(options: StepOptions | undefined, caps: readonly string[]): pb_OpMetadata {
  const description: Record<string, string> = { ...(options?.description ?? {}) };
  if (options?.name !== undefined) description['llb.customname'] = options.name;
  const metadata: pb_OpMetadata = {
    caps: Object.fromEntries(caps.map((cap) => [cap, true])),
  };
  if (Object.keys(description).length > 0) metadata.description = description;
  if (options?.ignoreCache) metadata.ignore_cache = true;
  if (options?.progressGroup) {
    metadata.progress_group = {
      id: options.progressGroup.id,
      name: options.progressGroup.name,
      weak: options.progressGroup.weak ?? false,
    };
  }
  return metadata;
}

/** An op's inputs in order of first use; the same output used twice is one input. Scratch is -1. */
export class InputList {
  readonly outputs: Output[] = [];

  indexOf(output: Output | undefined): number {
    if (!output) return -1;
    const found = this.outputs.findIndex((o) => o.vertex === output.vertex && o.index === output.index);
    if (found >= 0) return found;
    this.outputs.push(output);
    return this.outputs.length - 1;
  }
}
