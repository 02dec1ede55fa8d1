/**
 * `BENCH=push npm run bench`: pushing an image to the test bed's registry (plain HTTP, on loopback) with
 * our registry client, with `crane push`, and with BuildKit's own image exporter (`push=true`), in the
 * same run, alternating the order per iteration, after one untimed warm-up push. Two images: one big
 * single layer (2 GiB) and many small layers (500 × 1 MiB). Layers are uncompressed tars of
 * pseudo-random bytes, fresh for every run (a new seed, a new repository): no tool can skip a blob
 * because the registry or its own store has seen it.
 * The bench's own writes (the data, the deleted runs) are flushed to disk before each timed push.
 *
 *   ours      pushFromLayout in a child Node process (push-child.ts): time of the push inside
 *             it, peak RSS of that whole process (VmHWM)
 *   crane     `crane push LAYOUT_DIR REF --insecure` (an OCI layout); peak RSS from /proc VmHWM
 *   go-chunked  scripts/bench-peers/chunked-push (Go, built with `go build` at the start): the same OCI
 *             layout in the same chunks as ours (COG_PUSH_DEFAULT_CHUNK_SIZE, else 96 MiB), with nothing
 *             else a client does (no hashing, retries or progress); big image only. Timed as crane.
 *   buildkit  the raw files as local sources (one per layer, merged), exported with the image exporter,
 *             compression=uncompressed; timed from its status stream: the first "pushing …" status
 *             started to the last one completed (the layer tars are made before, in "exporting layers")
 *
 * crane is used from PATH, else from the test bed's tool dir (COG_TESTBED_CACHE/bin), else installed
 * there with `go install github.com/google/go-containerregistry/cmd/crane@$BENCH_CRANE_VERSION` (v0.22.1).
 * The registry's storage for the bench's repositories is deleted after each run.
 *
 * CPU columns: the pushing process's user + system time (sampled from /proc every 20 ms, so within 20 ms
 * of the total; none for BuildKit, whose push runs inside buildkitd) and the registry's over the run
 * (from its pid file): with the registry on the same 2 cores, they show which side bounds a push.
 *
 * Settings: BENCH_ITERATIONS (3), BENCH_PUSH_BIG_MIB (2048), BENCH_PUSH_SMALL_COUNT (500),
 * BENCH_PUSH_SMALL_MIB (1), BENCH_PUSH_TOOLS (ours,crane,buildkit,ours-one-patch,go-chunked),
 * BENCH_PUSH_IMAGES (big,small).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BuildkitClient } from '../buildkit/client.js';
import { fileSyncService } from '../buildkit/filesync.js';
import { Session } from '../buildkit/session.js';
import { solve } from '../buildkit/solve.js';
import type { moby_buildkit_v1_StatusResponse } from '../gen/types.js';
import { type State, local, merge } from '../llb/index.js';
import { pseudoRandomStream } from '../../test/support/registry-fixtures.js';
import { type Testbed, ensureTestbed } from '../../test/support/testbed.js';
import { statusTimeMs } from './status-time.js';
import { median, pad } from './report.js';
import { procStatFields } from '../process-start.js';
import { pushChunkSize, pushMultipartThreshold } from '../registry/settings.js';

/**
 * `ours-one-patch`: ours with the chunk size set to the blob's size (COG_PUSH_DEFAULT_CHUNK_SIZE), so a
 * blob above the multipart threshold goes in one PATCH as crane sends it; big image only (the small
 * image's blobs go in one PUT either way). It tells the client's own throughput from the cost of
 * upstream's 96 MiB chunks, which the test bed's filesystem-backed registry pays with an fsync of the
 * upload per chunk.
 */
type Tool = 'ours' | 'crane' | 'buildkit' | 'ours-one-patch' | 'go-chunked';

/** Tools run for the big image only: they differ from their counterparts only in blobs past the multipart threshold. */
const bigOnly: ReadonlySet<Tool> = new Set(['ours-one-patch', 'go-chunked']);
type ImageKind = 'big' | 'small';

interface Run {
  readonly tool: Tool;
  readonly image: ImageKind;
  readonly iteration: number;
  /** whole push: process start to exit for crane, the push statuses for BuildKit */
  readonly seconds: number;
  readonly peakRssMb: number | undefined;
  /** CPU time (user + system) of the pushing process; undefined for BuildKit (inside buildkitd) */
  readonly cpuSeconds: number | undefined;
  /** CPU time the registry spent during the push */
  readonly registryCpuSeconds: number | undefined;
  /** ours: the child process's whole life (Node start and module loading included) */
  readonly processSeconds?: number;
}

const MiB = 2 ** 20;
const iterations = Number(process.env.BENCH_ITERATIONS ?? 3);
const bigMiB = Number(process.env.BENCH_PUSH_BIG_MIB ?? 2048);
const smallCount = Number(process.env.BENCH_PUSH_SMALL_COUNT ?? 500);
const smallMiB = Number(process.env.BENCH_PUSH_SMALL_MIB ?? 1);
const tools = (process.env.BENCH_PUSH_TOOLS ?? 'ours,crane,buildkit,ours-one-patch,go-chunked')
  .split(',')
  .map((s) => s.trim()) as Tool[];
const imageKinds = (process.env.BENCH_PUSH_IMAGES ?? 'big,small')
  .split(',')
  .map((s) => s.trim()) as ImageKind[];
const craneVersion = process.env.BENCH_CRANE_VERSION ?? 'v0.22.1';
const runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;

const toolLabel: Record<Tool, string> = {
  ours: 'ours (Node)',
  crane: 'crane',
  buildkit: 'buildkit (push)',
  'ours-one-patch': 'ours, one PATCH',
  'go-chunked': 'Go, same chunks',
};

const layerSizes = (kind: ImageKind): number[] =>
  kind === 'big' ? [bigMiB * MiB] : Array.from({ length: smallCount }, () => smallMiB * MiB);

const imageLabel = (kind: ImageKind) =>
  kind === 'big' ? `${bigMiB} MiB × 1` : `${smallCount} × ${smallMiB} MiB`;

// ---------------------------------------------------------------------------------------------
// data: raw files (BuildKit's input) and an OCI layout of uncompressed tar layers (ours and crane)
// ---------------------------------------------------------------------------------------------

/** A ustar header for a regular file (sizes up to 8 GiB). */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const field = (value: string, offset: number, length: number) => h.write(value, offset, length, 'ascii');
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, '0') + '\0';
  field(name, 0, 100);
  field(octal(0o644, 8), 100, 8);
  field(octal(0, 8), 108, 8);
  field(octal(0, 8), 116, 8);
  field(octal(size, 12), 124, 12);
  field(octal(0, 12), 136, 12);
  field('        ', 148, 8);
  field('0', 156, 1);
  field('ustar\0', 257, 6);
  field('00', 263, 2);
  let sum = 0;
  for (const byte of h) sum += byte;
  field(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

/** Streams `stream` to `path`, resolving with its sha256 and size. */
async function writeHashed(path: string, stream: Readable): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    stream,
    new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    }),
    createWriteStream(path),
  );
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** A tar of one file `name` holding `size` pseudo-random bytes of `seed`, as a stream. */
function tarStream(name: string, size: number, seed: string): Readable {
  const pad = (512 - (size % 512)) % 512;
  return Readable.from(
    (async function* () {
      yield tarHeader(name, size);
      for await (const chunk of pseudoRandomStream(size, seed)) yield chunk as Buffer;
      yield Buffer.alloc(pad + 1024);
    })(),
  );
}

const fileName = (i: number) => `f${String(i).padStart(4, '0')}.bin`;

/** An OCI layout in `dir` with one image whose layers are tars of the given sizes. */
async function writeLayout(dir: string, sizes: readonly number[], seed: string): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const put = async (bytes: Buffer) => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const layers: { digest: string; size: number }[] = [];
  for (const [i, size] of sizes.entries()) {
    const tmp = join(dir, `layer-${i}.tmp`);
    const layer = await writeHashed(tmp, tarStream(fileName(i), size, `${seed}-${i}`));
    await rename(tmp, join(blobs, layer.digest.slice('sha256:'.length)));
    layers.push(layer);
  }
  const config = await put(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      }),
    ),
  );
  const manifest = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
      }),
    ),
  );
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest }],
    }),
  );
}

/** The raw files for BuildKit: `dir/l0000/f0000.bin`, one directory (one local source) per layer. */
async function writeFiles(dir: string, sizes: readonly number[], seed: string): Promise<string[]> {
  const dirs: string[] = [];
  for (const [i, size] of sizes.entries()) {
    const sub = join(dir, `l${String(i).padStart(4, '0')}`);
    await mkdir(sub, { recursive: true });
    await writeHashed(join(sub, fileName(i)), pseudoRandomStream(size, `${seed}-${i}`));
    dirs.push(sub);
  }
  return dirs;
}

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ out: string; peakKb: number; cpuSeconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let peakKb = 0;
    // the last sample before the process exits: within 20 ms of its whole CPU time
    let cpuSeconds = 0;
    const sample = () => {
      if (child.pid === undefined) return;
      readFile(`/proc/${child.pid}/status`, 'utf8').then(
        (status) => {
          const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
          if (hwm?.[1]) peakKb = Math.max(peakKb, Number(hwm[1]));
        },
        () => undefined,
      );
      void cpuSecondsOf(child.pid).then((cpu) => {
        if (cpu !== undefined) cpuSeconds = Math.max(cpuSeconds, cpu);
      });
    };
    const sampler = setInterval(sample, 20);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (err) => {
      clearInterval(sampler);
      reject(err);
    });
    child.on('close', (code) => {
      clearInterval(sampler);
      if (code === 0) resolve({ out, peakKb, cpuSeconds });
      else reject(new Error(`${command} ${args.join(' ')} failed (${code}):\n${out}`));
    });
  });
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ: 100 on Linux's common builds). */
const clockTicks = 100;

/** A process's CPU time so far (user + system, /proc/PID/stat fields 14 and 15), if it still runs. */
async function cpuSecondsOf(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  const fields = procStatFields(stat); // field 3 first
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** The test bed registry's CPU time so far, from its pid file; undefined when it cannot be read. */
async function registryCpuSeconds(tb: Testbed): Promise<number | undefined> {
  const pidFile = join(tb.env.COG_TESTBED_DIR ?? tb.stateDir, 'registry.pid');
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  return pid > 0 ? cpuSecondsOf(pid) : undefined;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

function testbedCache(): string {
  return (
    process.env.COG_TESTBED_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cog-ts-testbed')
  );
}

/** crane from PATH, else the test bed's tool dir, else `go install` into it. */
async function findCrane(tb: Testbed): Promise<string> {
  for (const dir of (tb.env.PATH ?? '').split(':')) {
    if (dir && (await exists(join(dir, 'crane')))) return join(dir, 'crane');
  }
  const bin = join(testbedCache(), 'bin');
  const crane = join(bin, 'crane');
  if (await exists(crane)) return crane;
  console.log(`installing crane ${craneVersion} into ${bin} (go install, once)`);
  await mkdir(bin, { recursive: true });
  await run('go', ['install', `github.com/google/go-containerregistry/cmd/crane@${craneVersion}`], {
    ...tb.env,
    GOBIN: bin,
    GOFLAGS: '-mod=mod',
  });
  return crane;
}

/** Builds the Go chunked peer (scripts/bench-peers/chunked-push) into the test bed's tool dir. */
async function buildChunkedPeer(tb: Testbed): Promise<string> {
  const source = fileURLToPath(new URL('../../../scripts/bench-peers/chunked-push', import.meta.url));
  const binary = join(testbedCache(), 'bin', 'cog-ts-bench-chunked-push');
  await run('go', ['build', '-C', source, '-o', binary, '.'], tb.env);
  return binary;
}

/**
 * Writes the page cache's dirty data to disk (`sync`): called after the bench writes a fresh layout and
 * after a run's files are deleted, so that the kernel's write-back of the bench's own gigabytes does not
 * land inside the next timed push (it did: whichever tool went first after a 2 GiB layout was written
 * was up to 40 % slower).
 */
async function flushToDisk(env: NodeJS.ProcessEnv): Promise<void> {
  await run('sync', [], env);
}

/**
 * Deletes a repository the bench pushed, and the blobs it links, from the registry's storage (their
 * content is fresh, so no other repository links them). Best effort.
 */
async function dropRepository(repository: string): Promise<void> {
  const root = join(testbedCache(), 'registry', 'docker', 'registry', 'v2');
  const repoDir = join(root, 'repositories', repository);
  const linked = async (sub: string) => readdir(join(repoDir, sub, 'sha256')).catch(() => [] as string[]);
  const hexes = [...(await linked('_layers')), ...(await linked(join('_manifests', 'revisions')))];
  for (const hex of hexes)
    await rm(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex), { recursive: true, force: true });
  await rm(repoDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// the three pushes
// ---------------------------------------------------------------------------------------------

interface Context {
  readonly tb: Testbed;
  readonly buildkit: BuildkitClient;
  readonly crane: string;
  /** the Go chunked peer's binary ('' when not benched) */
  readonly chunkedPeer: string;
  readonly work: string;
}

/**
 * Our push runs in a child process (push-child.ts), so its peak RSS is the push's own
 * and not what generating data or serving BuildKit's file transfers left in this process.
 */
async function runOurs(
  ctx: Context,
  kind: ImageKind,
  iteration: number,
  repository: string,
  onePatch = false,
): Promise<Run> {
  const layout = join(ctx.work, 'layout');
  const sizes = layerSizes(kind);
  await writeLayout(layout, sizes, repository);
  // the tar's header and end blocks make the blob a little larger than the data
  const env = onePatch
    ? { ...ctx.tb.env, COG_PUSH_DEFAULT_CHUNK_SIZE: String(Math.max(...sizes) + MiB) }
    : ctx.tb.env;
  await flushToDisk(ctx.tb.env);
  const started = performance.now();
  const { out, cpuSeconds } = await run(
    process.execPath,
    [
      fileURLToPath(new URL('./push-child.js', import.meta.url)),
      layout,
      `${ctx.tb.registry}/${repository}:bench`,
    ],
    env,
  );
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`ours: the push child printed no result:\n${out}`);
  const result = JSON.parse(line) as { seconds: number; peakRssMb: number };
  const processSeconds = (performance.now() - started) / 1000;
  return {
    tool: onePatch ? 'ours-one-patch' : 'ours',
    image: kind,
    iteration,
    ...result,
    processSeconds,
    cpuSeconds,
    registryCpuSeconds: undefined,
  };
}

/** crane or the Go chunked peer: an OCI layout pushed by a process timed from start to exit. */
async function runLayoutPusher(
  ctx: Context,
  tool: 'crane' | 'go-chunked',
  kind: ImageKind,
  iteration: number,
  repository: string,
): Promise<Run> {
  const layout = join(ctx.work, 'layout');
  await writeLayout(layout, layerSizes(kind), repository);
  await flushToDisk(ctx.tb.env);
  const env = ctx.tb.env;
  const [command, args] =
    tool === 'crane'
      ? [ctx.crane, ['push', layout, `${ctx.tb.registry}/${repository}:bench`, '--insecure']]
      : [
          ctx.chunkedPeer,
          [
            layout,
            ctx.tb.registry,
            repository,
            'bench',
            String(pushChunkSize(env)),
            String(pushMultipartThreshold(env)),
          ],
        ];
  const start = performance.now();
  const { peakKb, cpuSeconds } = await run(command, args, env);
  const seconds = (performance.now() - start) / 1000;
  return {
    tool,
    image: kind,
    iteration,
    seconds,
    peakRssMb: peakKb ? peakKb / 1024 : undefined,
    cpuSeconds,
    registryCpuSeconds: undefined,
  };
}

async function runBuildkit(
  ctx: Context,
  kind: ImageKind,
  iteration: number,
  repository: string,
): Promise<Run> {
  const dirs = await writeFiles(join(ctx.work, 'files'), layerSizes(kind), repository);
  await flushToDisk(ctx.tb.env);
  const prefix = `bench-push-${repository.replace(/[^a-z0-9]+/g, '-')}`;
  const names = dirs.map((_, i) => `${prefix}-${i}`);
  const states: State[] = names.map((name) => local(name, { sharedKeyHint: name }));
  const root = states.length === 1 ? states[0]! : merge(states);
  const session = Session.start(
    ctx.buildkit,
    [fileSyncService(Object.fromEntries(names.map((name, i) => [name, dirs[i]!])))],
    `bench-${prefix}`,
  );
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  const onStatus = (s: moby_buildkit_v1_StatusResponse) => {
    for (const st of s.statuses ?? []) {
      if (!st.ID?.startsWith('pushing')) continue;
      const started = statusTimeMs(st.started);
      const completed = statusTimeMs(st.completed);
      if (started !== undefined) first = Math.min(first, started);
      if (completed !== undefined) last = Math.max(last, completed);
    }
  };
  try {
    await solve(ctx.buildkit, {
      definition: root.marshal({ localUniqueId: prefix }).definition,
      session,
      onStatus,
      exporters: [
        {
          Type: 'image',
          Attrs: {
            name: `${ctx.tb.registry}/${repository}:bench`,
            push: 'true',
            'registry.insecure': 'true',
            compression: 'uncompressed',
            'force-compression': 'true',
            'oci-mediatypes': 'true',
          },
        },
      ],
    });
  } finally {
    session.close();
  }
  await run(
    'buildctl',
    ['prune', '--filter', `description~="local source for ${prefix}-"`],
    ctx.tb.env,
  ).catch((err: unknown) => console.warn(`  (buildctl prune failed: ${(err as Error).message})`));
  if (!Number.isFinite(first) || !Number.isFinite(last))
    throw new Error('buildkit: no "pushing" status in the status stream');
  return {
    tool: 'buildkit',
    image: kind,
    iteration,
    seconds: (last - first) / 1000,
    peakRssMb: undefined,
    cpuSeconds: undefined,
    registryCpuSeconds: undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------------------------

/** Runs `push` in a fresh work directory, then deletes it and the pushed repository's storage. */
async function inScratch<T>(
  base: Omit<Context, 'work'>,
  repository: string,
  push: (ctx: Context, repository: string) => Promise<T>,
): Promise<T> {
  const work = await mkdtemp(join(tmpdir(), 'cogts-push-bench-'));
  try {
    return await push({ ...base, work }, repository);
  } finally {
    await rm(work, { recursive: true, force: true });
    await dropRepository(repository);
    await flushToDisk(base.tb.env);
  }
}

function measure(
  ctx: Context,
  tool: Tool,
  kind: ImageKind,
  iteration: number,
  repository: string,
): Promise<Run> {
  if (tool === 'crane' || tool === 'go-chunked')
    return runLayoutPusher(ctx, tool, kind, iteration, repository);
  if (tool === 'buildkit') return runBuildkit(ctx, kind, iteration, repository);
  return runOurs(ctx, kind, iteration, repository, tool === 'ours-one-patch');
}

/**
 * Throughput ratios ours/peer of the runs of one iteration: the two ran minutes apart at most, so the
 * disk's and CPU's drift over a session (crane alone took 8.4–11.2 s for the same 2 GiB in one session)
 * moves both; the spread of these says how far a ratio of medians can be trusted.
 */
function pairedRatios(runs: readonly Run[], kind: ImageKind, peer: Tool): number[] {
  const ratios: number[] = [];
  for (const mine of runs.filter((r) => r.tool === 'ours' && r.image === kind)) {
    const theirs = runs.find((r) => r.tool === peer && r.image === kind && r.iteration === mine.iteration);
    if (theirs) ratios.push(theirs.seconds / mine.seconds);
  }
  return ratios;
}

async function main(): Promise<void> {
  const tb = await ensureTestbed();
  const crane = tools.includes('crane') ? await findCrane(tb) : '';
  if (crane) console.log(`crane: ${crane} (${(await run(crane, ['version'], tb.env)).out.trim()})`);
  const chunkedPeer = tools.includes('go-chunked') ? await buildChunkedPeer(tb) : '';
  const buildkit = await BuildkitClient.connect(tb.buildkitHost);
  const base = { tb, buildkit, crane, chunkedPeer };
  const runs: Run[] = [];
  try {
    for (const kind of imageKinds) {
      // one untimed push first: the first push of a run meets a cold registry and page cache, and the
      // rotation below always gives iteration 0's first slot to the same tool
      const warmTool = tools.find((t) => !bigOnly.has(t));
      if (warmTool) {
        const warm = await inScratch(base, `cogts-bench/push-warmup-${kind}-${runId}`, (ctx, repository) =>
          measure(ctx, warmTool, kind, -1, repository),
        );
        console.log(
          `  ${pad(imageLabel(kind), 14)} warm-up (${warmTool}, not counted): ${warm.seconds.toFixed(2)} s`,
        );
      }
      for (let i = 0; i < iterations; i++) {
        // rotate the order so each tool goes first, second, third in turn
        const order = tools.map((_, k) => tools[(k + i) % tools.length]!);
        for (const tool of order) {
          if (bigOnly.has(tool) && kind !== 'big') continue;
          await inScratch(base, `cogts-bench/push-${tool}-${kind}-${runId}-${i}`, async (ctx, repository) => {
            const registryBefore = await registryCpuSeconds(tb);
            const measured = await measure(ctx, tool, kind, i, repository);
            // the registry's CPU over the whole run (for BuildKit: its export too, which the registry idles through)
            const registryAfter = await registryCpuSeconds(tb);
            const r: Run = {
              ...measured,
              registryCpuSeconds:
                registryBefore !== undefined && registryAfter !== undefined
                  ? registryAfter - registryBefore
                  : undefined,
            };
            runs.push(r);
            console.log(
              `  ${pad(imageLabel(kind), 14)} ${pad(tool, 14)} #${i}: ${r.seconds.toFixed(2)} s` +
                (r.peakRssMb === undefined ? '' : `, peak RSS ${r.peakRssMb.toFixed(0)} MB`) +
                (r.cpuSeconds === undefined ? '' : `, CPU ${r.cpuSeconds.toFixed(2)} s`) +
                (r.registryCpuSeconds === undefined
                  ? ''
                  : `, registry CPU ${r.registryCpuSeconds.toFixed(2)} s`) +
                (r.processSeconds === undefined ? '' : ` (child process ${r.processSeconds.toFixed(2)} s)`),
            );
          });
        }
      }
    }
  } finally {
    buildkit.close();
  }

  const rows: string[][] = [['image', 'tool', 'wall s', 'MB/s', 'peak RSS MB', 'CPU s', 'registry CPU s']];
  const verdicts: string[] = [];
  const spreads: string[] = [];
  for (const kind of imageKinds) {
    const bytes = layerSizes(kind).reduce((a, b) => a + b, 0);
    const stats = new Map<Tool, { seconds: number; rss: number | undefined }>();
    const medianOf = (values: readonly (number | undefined)[]) => {
      const known = values.filter((v): v is number => v !== undefined);
      return known.length ? median(known).toFixed(2) : '-';
    };
    for (const tool of tools) {
      const mine = runs.filter((r) => r.tool === tool && r.image === kind);
      if (!mine.length) continue;
      const seconds = median(mine.map((r) => r.seconds));
      const rssValues = mine.map((r) => r.peakRssMb).filter((v): v is number => v !== undefined);
      const rss = rssValues.length ? Math.max(...rssValues) : undefined;
      stats.set(tool, { seconds, rss });
      rows.push([
        imageLabel(kind),
        toolLabel[tool],
        seconds.toFixed(2),
        (bytes / 1e6 / seconds).toFixed(0),
        rss === undefined ? '-' : rss.toFixed(0),
        medianOf(mine.map((r) => r.cpuSeconds)),
        medianOf(mine.map((r) => r.registryCpuSeconds)),
      ]);
    }
    const crane = stats.get('crane');
    for (const [tool, label] of [
      ['ours-one-patch', 'ours one PATCH/crane'],
      ['go-chunked', 'Go same chunks/crane'],
    ] as const) {
      const measured = stats.get(tool);
      if (measured && crane)
        rows.push([
          imageLabel(kind),
          label,
          '',
          `${(crane.seconds / measured.seconds).toFixed(2)}x`,
          '',
          '',
          '',
        ]);
    }
    const ours = stats.get('ours');
    for (const peer of ['crane', 'buildkit', 'go-chunked'] as const) {
      const theirs = stats.get(peer);
      if (!ours || !theirs) continue;
      const ratio = theirs.seconds / ours.seconds;
      rows.push([imageLabel(kind), `ours/${peer}`, '', `${ratio.toFixed(2)}x`, '', '', '']);
      const paired = pairedRatios(runs, kind, peer);
      if (paired.length)
        spreads.push(
          `${imageLabel(kind)}: ours/${peer} per iteration (same iteration, adjacent runs): ` +
            `median ${median(paired).toFixed(2)}x, ${Math.min(...paired).toFixed(2)}-${Math.max(...paired).toFixed(2)}x ` +
            `(${paired.map((r) => r.toFixed(2)).join(', ')})`,
        );
      if (peer === 'crane')
        verdicts.push(
          `${imageLabel(kind)}: throughput >= 1.0x crane: ${ratio >= 1 ? 'met' : 'NOT met'} (${ratio.toFixed(3)}x)`,
        );
    }
    if (ours?.rss !== undefined)
      verdicts.push(
        `${imageLabel(kind)}: Node peak RSS <= 200 MB: ${ours.rss <= 200 ? 'met' : 'NOT met'} (${ours.rss.toFixed(0)} MB)`,
      );
  }
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  console.log(
    `\npush to ${tb.registry} (plain HTTP, loopback), uncompressed tar layers, ${iterations} iterations (medians; ratio = ours/peer throughput)`,
  );
  for (const row of rows) console.log(row.map((cell, c) => pad(cell, widths[c] ?? 0)).join('  '));
  if (spreads.length) console.log('spread:');
  for (const line of spreads) console.log(`  ${line}`);
  console.log('targets:');
  for (const v of verdicts) console.log(`  ${v}`);
}

await main();
