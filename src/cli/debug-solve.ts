/**
 * `cog debug solve`: solve an LLB Definition (a corpus example or a file written by `cog debug llb`)
 * through our own client, like `buildctl build`: locals, secrets, outputs, progress, Ctrl-C.
 */
import { readFile } from 'node:fs/promises';
import { writeFile } from 'node:fs/promises';
import type { TlsFlags } from '../buildkit/tls.js';
import { type ExportSpec, exportsFor } from '../buildkit/filesend.js';
import type { Writable } from 'node:stream';
import { fileSyncService } from '../buildkit/filesync.js';
import { type SecretSource, parseSecretFlag } from '../buildkit/secret-flags.js';
import { secretsService } from '../buildkit/secrets.js';
import type { SessionService } from '../buildkit/session.js';
import { solve } from '../buildkit/solve.js';
import { CogError } from '../errors.js';
import type { pb_Definition } from '../gen/types.js';
import { examples, findExample } from '../llb/examples.js';
import { codec } from '../proto/schema.js';
import { parseOutputFlag } from './output-flag.js';
import { withBuildkit } from './buildkit-command.js';

export interface DebugSolveArgs {
  readonly example: string | undefined;
  readonly llb: string | undefined;
  readonly outputs: readonly string[];
  readonly locals: readonly string[];
  readonly secrets: readonly string[];
  readonly metadataFile: string | undefined;
  readonly progress: string | undefined;
  readonly httpUrl: string;
  readonly gitUrl: string;
  /** buildctl-style TLS flags for a tcp:// BUILDKIT_HOST */
  readonly tls?: TlsFlags;
}

export interface CommandIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean; readonly columns?: number };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

async function loadDefinition(args: DebugSolveArgs, io: CommandIo): Promise<pb_Definition> {
  if ((args.example === undefined) === (args.llb === undefined)) {
    throw new CogError('give exactly one of --example NAME or --llb FILE', {
      hint: '--llb - reads the Definition `cog debug llb` writes from stdin',
    });
  }
  if (args.example !== undefined) {
    const example = findExample(args.example);
    if (!example) {
      throw new CogError(`no LLB example named "${args.example}"`, {
        hint: `--example takes one of: ${examples.map((e) => e.name).join(', ')}`,
      });
    }
    return example
      .build({ httpUrl: args.httpUrl, gitUrl: args.gitUrl })
      .marshal({ platform: { OS: 'linux', Architecture: 'amd64' } }).definition;
  }
  const file = args.llb as string;
  let bytes: Buffer;
  try {
    bytes = file === '-' ? await readAll(io.stdin) : await readFile(file);
  } catch (err) {
    throw new CogError(`--llb ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
      hint: 'write one with `cog debug llb --example NAME > FILE`',
    });
  }
  let definition: pb_Definition;
  try {
    definition = codec('pb.Definition').decode(bytes);
  } catch (err) {
    throw new CogError(`--llb ${file}: not an LLB Definition (${(err as Error).message})`, {
      hint: 'write one with `cog debug llb --example NAME > FILE`',
    });
  }
  if (!definition.def?.length) throw new CogError(`--llb ${file}: the Definition has no ops`);
  return definition;
}

function parseLocal(value: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) {
    throw new CogError(`--local "${value}" is not NAME=DIR`, {
      hint: 'name the directory as the LLB local source does, e.g. --local context=.',
    });
  }
  return [value.slice(0, eq), value.slice(eq + 1)];
}

export async function debugSolve(args: DebugSolveArgs, io: CommandIo): Promise<void> {
  const definition = await loadDefinition(args, io);
  const outputs = args.outputs.map(parseOutputFlag);
  const localDirs = Object.fromEntries(args.locals.map(parseLocal));
  const secrets: Record<string, SecretSource> = Object.fromEntries(
    args.secrets.map((v) => parseSecretFlag(v, io.env)),
  );
  const exports = exportsFor(
    outputs.map((o): ExportSpec => {
      if (o.type === 'image') return { type: 'image', attrs: o.attrs };
      if (o.type === 'local') return { type: 'local', dir: o.dest as string, attrs: o.attrs };
      return {
        type: o.type,
        output: o.dest === '-' ? (io.stdout as Writable) : (o.dest as string),
        attrs: o.attrs,
      };
    }),
  );
  const exporters = exports.exporters;

  const services: SessionService[] = [exports.service];
  if (Object.keys(localDirs).length > 0) services.push(fileSyncService(localDirs));
  if (Object.keys(secrets).length > 0) services.push(secretsService(secrets, io.env));

  const result = await withBuildkit(
    io,
    { progress: args.progress, tls: args.tls, services, secretFlag: true },
    (buildkit) =>
      solve(buildkit.client, {
        ref: buildkit.ref,
        definition,
        session: buildkit.session,
        exporters,
        signal: buildkit.signal,
        onStatus: buildkit.onStatus,
      }),
  );
  if (args.metadataFile) {
    await writeFile(args.metadataFile, `${JSON.stringify(result.exporterResponse, null, 2)}\n`);
  }
  const digest = result.exporterResponse['containerimage.digest'];
  if (digest) io.stdout.write(`${digest}\n`);
}
