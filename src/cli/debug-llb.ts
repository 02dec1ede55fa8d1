/** `cog debug llb`: write an LLB Definition (the bytes `buildctl build` and `dump-llb` read) or describe it. */
import { CogError } from '../errors.js';
import { type ExampleInputs, examples, findExample } from '../llb/examples.js';
import { codec } from '../proto/schema.js';

export interface DebugLlbArgs {
  readonly example: string;
  readonly format: 'definition' | 'json';
  readonly httpUrl: string;
  readonly gitUrl: string;
}

export function debugLlb(args: DebugLlbArgs, out: NodeJS.WritableStream): void {
  const example = findExample(args.example);
  if (!example) {
    throw new CogError(`no LLB example named "${args.example}"`, {
      hint: `--example takes one of: ${examples.map((e) => e.name).join(', ')}`,
    });
  }
  const inputs: ExampleInputs = { httpUrl: args.httpUrl, gitUrl: args.gitUrl };
  const marshalled = example.build(inputs).marshal({ platform: { OS: 'linux', Architecture: 'amd64' } });
  if (args.format === 'json') {
    const ops = marshalled.ops.map((o) => ({
      digest: o.digest,
      kind: o.kind,
      op: o.op,
      metadata: o.metadata,
    }));
    out.write(
      `${JSON.stringify(ops, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v), 2)}\n`,
    );
    return;
  }
  out.write(codec('pb.Definition').encode(marshalled.definition));
}
