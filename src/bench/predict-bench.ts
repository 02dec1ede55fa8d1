/**
 * `BENCH=predict npm run bench`: how long one prediction on a built image takes, and where the time
 * goes — resolving the image through buildkitd, starting the exec, the server's start and setup(), the
 * prediction — plus the whole `cog run IMAGE` command's wall time. Target: ≤ 3 s end to end for hello.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildkitClient } from '../buildkit/client.js';
import { fileSyncService } from '../buildkit/filesync.js';
import { gatewayBuild } from '../buildkit/gateway.js';
import { Session } from '../buildkit/session.js';
import { inputDirName, resolveModelImage, runOnce } from '../runtime/run-model.js';
import type { SmokeReport } from '../runtime/smoke.js';
import { execOk } from '../../test/support/exec.js';
import { ensureTestbed, repoRoot } from '../../test/support/testbed.js';

const iterations = Number(process.env.BENCH_ITERATIONS ?? 5);
const cog = join(repoRoot, 'bin', 'cog');

interface Phases {
  connect: number;
  resolve: number;
  start: number;
  setup: number;
  predict: number;
  finish: number;
  total: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

const tb = await ensureTestbed();
const ref = `${tb.registry}/cogts-bench/predict-hello:latest`;
console.log(`building and pushing ${ref}`);
await execOk(cog, ['build', '-t', ref, '--push', '--progress', 'quiet'], {
  env: tb.env,
  cwd: join(repoRoot, 'fixtures', 'models', 'hello'),
});

const inputDir = await mkdtemp(join(tmpdir(), 'cogts-bench-input-'));
await writeFile(join(inputDir, 'request.json'), JSON.stringify({ name: 'bench' }));
const runs: Phases[] = [];
const cliRuns: number[] = [];
try {
  for (let i = 0; i < iterations; i++) {
    const t0 = Date.now();
    const client = await BuildkitClient.connect(tb.buildkitHost);
    const session = Session.start(client, [fileSyncService({ [inputDirName]: inputDir })]);
    const t1 = Date.now();
    let t2 = 0;
    let t3 = 0;
    let report: SmokeReport | undefined;
    try {
      await gatewayBuild(client, { session }, async (gw) => {
        const model = await resolveModelImage(gw, ref);
        t2 = Date.now();
        const run = await runOnce(gw, model.state, { mode: 'predict', setupTimeout: 300, env: {} });
        t3 = Date.now();
        report = run.report;
        return { ref: run.ref };
      });
    } finally {
      session.close();
      client.close();
    }
    const t4 = Date.now();
    const timings = report?.timings ?? {};
    const probe = (timings.probe_started ?? 0) * 1000;
    const ready = (timings.ready ?? 0) * 1000;
    const answered = (timings.answered ?? 0) * 1000;
    if (report?.prediction?.output !== 'hello bench')
      throw new Error(`unexpected answer: ${JSON.stringify(report)}`);
    runs.push({
      connect: t1 - t0,
      resolve: t2 - t1,
      start: probe - t2,
      setup: ready - probe,
      predict: answered - ready,
      finish: t3 - answered + (t4 - t3),
      total: t4 - t0,
    });
    const c0 = Date.now();
    const out = await execOk(cog, ['run', ref, '-i', 'name=cli'], { env: tb.env });
    if (out.stdout !== 'hello cli\n') throw new Error(`cog run printed ${out.stdout}`);
    cliRuns.push(Date.now() - c0);
  }
} finally {
  await rm(inputDir, { recursive: true, force: true });
}

const s = (ms: number) => (ms / 1000).toFixed(2).padStart(7);
console.log(`\ncog run on ${ref}: medians of ${iterations} runs, seconds`);
console.log(
  'connect  resolve  exec start  server start+setup  predict  read back  total(in-process)  cog run (CLI)',
);
const m = (k: keyof Phases) => median(runs.map((r) => r[k]));
console.log(
  `${s(m('connect'))}  ${s(m('resolve'))}  ${s(m('start'))}     ${s(m('setup'))}            ${s(m('predict'))}  ${s(m('finish'))}    ${s(m('total'))}           ${s(median(cliRuns))}`,
);
const cli = median(cliRuns);
console.log(
  `target: cog run ≤ 3 s end to end for hello: ${cli <= 3000 ? 'met' : 'NOT met'} (${(cli / 1000).toFixed(2)} s)`,
);
