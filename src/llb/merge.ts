/** MergeOp and DiffOp: combine or subtract filesystems without copying files. */
import {
  type MarshalContext,
  type MarshalledVertex,
  type Output,
  type StepOptions,
  type Vertex,
  stepMetadata,
} from './vertex.js';

export class MergeVertex implements Vertex {
  readonly kind = 'merge';

  constructor(
    private readonly outputs: readonly Output[],
    private readonly step: StepOptions | undefined,
  ) {}

  marshal(_ctx: MarshalContext): MarshalledVertex {
    return {
      op: { merge: { inputs: this.outputs.map((_, input) => ({ input })) }, constraints: {} },
      inputs: this.outputs,
      metadata: stepMetadata(this.step, []),
    };
  }
}

export class DiffVertex implements Vertex {
  readonly kind = 'diff';

  constructor(
    private readonly lower: Output | undefined,
    private readonly upper: Output | undefined,
    private readonly step: StepOptions | undefined,
  ) {}

  marshal(_ctx: MarshalContext): MarshalledVertex {
    const inputs: Output[] = [];
    const index = (output: Output | undefined) => {
      if (!output) return -1;
      inputs.push(output);
      return inputs.length - 1;
    };
    const lower = index(this.lower);
    const upper = index(this.upper);
    return {
      op: { diff: { lower: { input: lower }, upper: { input: upper } }, constraints: {} },
      inputs,
      metadata: stepMetadata(this.step, []),
    };
  }
}
