/**
 * `npm run bench`: the same local context (10,000 files, 1 GiB) sent to the test bed's buildkitd by our
 * FileSync client and by `buildctl build`, with the same LLB graph (a local source bind-mounted into an
 * uncached exec, which needs every file), alternating, several times. Each run uses its own local name
 * and shared key (no snapshot to reuse) and its local-source records are pruned afterwards.
 *
 * Prints wall time of the whole solve, the daemon's time for the local source vertex (the transfer),
 * throughput, the ratio ours/buildctl, and this process's peak RSS while our client was sending.
 *
 * Settings: BENCH_ITERATIONS (3), BENCH_BYTES (1 GiB), BENCH_FILES (10,000), BENCH_KEEP_CONTEXT=DIR
 * (generate there once and keep it).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildkitClient } from '../buildkit/client.js';
import { fileSyncService } from '../buildkit/filesync.js';
import { Session } from '../buildkit/session.js';
import { solve } from '../buildkit/solve.js';
import type { moby_buildkit_v1_StatusResponse, pb_Definition } from '../gen/types.js';
import { image, local } from '../llb/index.js';
import { codec } from '../proto/schema.js';
import { type Testbed, ensureTestbed } from '../../test/support/testbed.js';
import { generateLargeContext } from './large-context.js';
import { statusTimeMs } from './status-time.js';
import { median, pad } from './report.js';

interface Run {
  readonly who: 'ours' | 'buildctl';
  readonly iteration: number;
  readonly wallMs: number;
  readonly transferMs: number;
  readonly peakRssMb?: number;
}

const iterations = Number(process.env.BENCH_ITERATIONS ?? 3);
const totalBytes = Number(process.env.BENCH_BYTES ?? 1024 * 1024 * 1024);
const totalFiles = Number(process.env.BENCH_FILES ?? 10_000);
const runId = `${process.pid}-${Date.now()}`;

function graph(name: string): pb_Definition {
  const context = local(name, { sharedKeyHint: name });
  return image('python:3.11-slim')
    .run({
      shell: 'test -f /ctx/d000/f000.bin',
      mounts: [{ type: 'bind', dest: '/ctx', source: context, readonly: true }],
      ignoreCache: true,
    })
    .root()
    .marshal({ localUniqueId: name }).definition;
}

/** Tracks the local source vertex's start and completion in status updates. */
class VertexTimer {
  private started: number | undefined;
  private completed: number | undefined;
  constructor(private readonly vertexName: string) {}
  update(
    vertexes: readonly { name?: string | undefined; started?: unknown; completed?: unknown }[] | undefined,
  ): void {
    for (const v of vertexes ?? []) {
      if (v.name !== this.vertexName) continue;
      this.started = statusTimeMs(v.started) ?? this.started;
      this.completed = statusTimeMs(v.completed) ?? this.completed;
    }
  }
  get durationMs(): number {
    if (this.started === undefined || this.completed === undefined) return Number.NaN;
    return this.completed - this.started;
  }
}

function run(command: string, args: string[], tb: Testbed, stdin?: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: tb.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out + err) : reject(new Error(`${command} ${args.join(' ')} failed:\n${err}`)),
    );
    child.stdin.end(stdin ?? Buffer.alloc(0));
  });
}

async function prune(tb: Testbed, name: string): Promise<void> {
  await run('buildctl', ['prune', '--filter', `description=="local source for ${name}"`], tb);
}

async function runOurs(client: BuildkitClient, dir: string, iteration: number): Promise<Run> {
  const name = `bench-ours-${runId}-${iteration}`;
  const timer = new VertexTimer(`local://${name}`);
  let files = 0;
  const session = Session.start(
    client,
    [fileSyncService({ [name]: dir }, { onFileRequested: () => files++ })],
    `bench-${name}`,
  );
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const start = performance.now();
  try {
    await solve(client, {
      definition: graph(name),
      session,
      onStatus: (s: moby_buildkit_v1_StatusResponse) => timer.update(s.vertexes),
    });
  } finally {
    clearInterval(sampler);
    session.close();
  }
  const wallMs = performance.now() - start;
  if (files !== totalFiles) throw new Error(`ours: ${files} files requested, expected ${totalFiles}`);
  return { who: 'ours', iteration, wallMs, transferMs: timer.durationMs, peakRssMb: peak / 2 ** 20 };
}

async function runBuildctl(tb: Testbed, dir: string, iteration: number): Promise<Run> {
  const name = `bench-buildctl-${runId}-${iteration}`;
  const timer = new VertexTimer(`local://${name}`);
  const definition = codec('pb.Definition').encode(graph(name));
  const start = performance.now();
  const output = await run(
    'buildctl',
    ['build', '--progress=rawjson', `--local=${name}=${dir}`],
    tb,
    definition,
  );
  const wallMs = performance.now() - start;
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      timer.update((JSON.parse(line) as { vertexes?: { name?: string }[] }).vertexes);
    } catch {
      // not a status line
    }
  }
  return { who: 'buildctl', iteration, wallMs, transferMs: timer.durationMs };
}

async function main(): Promise<void> {
  const tb = await ensureTestbed();
  const client = await BuildkitClient.connect(tb.buildkitHost);
  const keep = process.env.BENCH_KEEP_CONTEXT;
  const dir = keep ?? (await mkdtemp(join(tmpdir(), 'cogts-bench-')));
  try {
    const marker = join(dir, '.generated');
    const have = keep
      ? await stat(marker).then(
          () => true,
          () => false,
        )
      : false;
    let bytes = totalBytes;
    if (!have) {
      const t0 = performance.now();
      await mkdir(dir, { recursive: true });
      const dirs = Math.max(1, Math.round(totalFiles / 100));
      const generated = await generateLargeContext(dir, {
        dirs,
        filesPerDir: Math.round(totalFiles / dirs),
        totalBytes,
      });
      bytes = generated.bytes;
      if (keep) await mkdir(marker);
      console.log(
        `generated ${generated.files} files, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    // warm up: the base image, the session path, the page cache of the context
    console.log('warming up (one run each, not counted)');
    const warm = [await runOurs(client, dir, -1), await runBuildctl(tb, dir, -1)];
    for (const r of warm) await prune(tb, `bench-${r.who}-${runId}-${r.iteration}`);

    const runs: Run[] = [];
    for (let i = 0; i < iterations; i++) {
      const order = i % 2 === 0 ? (['ours', 'buildctl'] as const) : (['buildctl', 'ours'] as const);
      for (const who of order) {
        const r = who === 'ours' ? await runOurs(client, dir, i) : await runBuildctl(tb, dir, i);
        runs.push(r);
        await prune(tb, `bench-${who}-${runId}-${i}`);
        console.log(
          `  ${pad(who, 8)} #${i}: wall ${(r.wallMs / 1000).toFixed(2)} s, transfer ${(r.transferMs / 1000).toFixed(2)} s`,
        );
      }
    }

    const mb = bytes / 1e6;
    const rows: string[][] = [['', 'wall s', 'transfer s', 'MB/s (transfer)', 'MB/s (wall)', 'peak RSS MB']];
    const summary = (who: 'ours' | 'buildctl') => {
      const mine = runs.filter((r) => r.who === who);
      const wall = median(mine.map((r) => r.wallMs)) / 1000;
      const transfer = median(mine.map((r) => r.transferMs)) / 1000;
      const rss = Math.max(...mine.map((r) => r.peakRssMb ?? Number.NaN));
      return { wall, transfer, rss };
    };
    const ours = summary('ours');
    const theirs = summary('buildctl');
    for (const [label, s] of [
      ['ours (Node)', ours],
      ['buildctl', theirs],
    ] as const) {
      rows.push([
        label,
        s.wall.toFixed(2),
        s.transfer.toFixed(2),
        (mb / s.transfer).toFixed(0),
        (mb / s.wall).toFixed(0),
        Number.isNaN(s.rss) ? '-' : s.rss.toFixed(0),
      ]);
    }
    rows.push([
      'ours/buildctl',
      '',
      '',
      `${(theirs.transfer / ours.transfer).toFixed(2)}x`,
      `${(theirs.wall / ours.wall).toFixed(2)}x`,
      '',
    ]);
    const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
    console.log(
      `\n${totalFiles} files, ${(bytes / 2 ** 20).toFixed(0)} MiB, ${iterations} iterations (medians; throughput ratio = ours/buildctl)`,
    );
    for (const row of rows) console.log(row.map((cell, c) => pad(cell, widths[c] ?? 0)).join('  '));
    console.log(
      `process peak RSS (whole bench, incl. generation): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
    );
    const ratio = theirs.transfer / ours.transfer;
    console.log(
      `targets: throughput >= 0.9x buildctl: ${ratio >= 0.9 ? 'met' : 'NOT met'}; peak RSS <= 200 MB: ${ours.rss <= 200 ? 'met' : 'NOT met'}`,
    );
  } finally {
    client.close();
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}

await main();
