/**
 * `npm run bench` (BENCH=build): `cog build` of fixture models by our CLI against upstream Cog's own
 * Dockerfile for the same cog.yaml, built by `buildctl --frontend dockerfile.v0` on the same buildkitd,
 * both pushed to the test bed's registry. Per fixture: a cold build (`buildctl prune --all` first), a
 * no-op rebuild (ours answers it from its build record), the same with `--pull` (ours solves on
 * BuildKit's cache, as upstream always does) and a source-only rebuild (a comment appended to the
 * predictor file; ours answers it without buildkitd). Tools alternate.
 *
 * Upstream is Cog v0.22.0's CLI built from the Go module proxy by scripts/upstream-cog.sh. Its Dockerfile
 * is what `cog debug --use-cog-base-image=false` prints (checked once per fixture, with a stand-in Docker
 * endpoint that answers `/_ping`, since `cog debug` pings a daemon); the `cog_build` context (.cog/build:
 * requirements.txt, the CA certificate, local wheels) is staged by the same generator code path
 * (cog-stage), because `cog debug` deletes .cog/build on exit. Upstream's time is that generation plus
 * the buildctl build: a lower bound of its `cog build`, which afterwards also runs the image for
 * `pip freeze` and builds a second image to add labels.
 *
 * Only lines needing the internet are changed in upstream's Dockerfile (see `adjustUpstream`), plus
 * one upstream bug that stops a fixture building at all (cog.yaml environment values with spaces are
 * written unquoted); the bench prints every change it made.
 *
 * Not to be run concurrently with the tests: cold builds prune the whole BuildKit cache.
 *
 * Settings: BENCH_FIXTURES (hello,requirements,system-packages,environment), BENCH_ITERATIONS (3, for
 * the warm cases), BENCH_COLD_ITERATIONS (2), UPSTREAM_COG_VERSION (v0.22.0), BENCH_VERBOSE=1 (print
 * the steps each build ran), BENCH_LOG_DIR=DIR (keep each build's progress output there).
 */
import { exec } from '../../test/support/exec.js';
import { stepsFromPlainProgress } from '../../test/support/plain-steps.js';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type Testbed, ensureTestbed, repoRoot } from '../../test/support/testbed.js';
import { median } from './report.js';

type Tool = 'ours' | 'upstream';
/**
 * `no-op` is what a user gets: ours answers an unchanged build from its build record (no solve);
 * `no-op --pull` makes ours solve anyway, on BuildKit's cache (upstream runs the same build in both).
 * `source-only`: ours writes the new source layer itself and pushes the image without buildkitd
 * (build/source-rebuild.ts), so its "steps run" is 0; upstream runs its COPY on BuildKit.
 */
type Case = 'cold' | 'no-op' | 'no-op --pull' | 'source-only';

interface Run {
  readonly fixture: string;
  readonly tool: Tool;
  readonly kind: Case;
  readonly iteration: number;
  readonly wallMs: number;
  /** build steps that ran rather than coming from the cache */
  readonly ran: readonly string[];
}

interface Fixture {
  readonly name: string;
  /** per tool: its own copy of the fixture */
  readonly dirs: Record<Tool, string>;
  /** the predictor file, relative to the project */
  readonly predictor: string;
}

const fixtureNames = (process.env.BENCH_FIXTURES ?? 'hello,requirements,system-packages,environment')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const iterations = Number(process.env.BENCH_ITERATIONS ?? 3);
const coldIterations = Number(process.env.BENCH_COLD_ITERATIONS ?? 2);
const verbose = process.env.BENCH_VERBOSE === '1';
const logDir = process.env.BENCH_LOG_DIR;
const upstreamVersion = process.env.UPSTREAM_COG_VERSION ?? 'v0.22.0';
const targets: Partial<Record<Case, number>> = { cold: 1.0, 'no-op': 0.5, 'source-only': 0.7 };
const runTag = Date.now().toString(36);
const ourCli = join(repoRoot, 'bin', 'cog');

// ---------------------------------------------------------------------------------------------------
// upstream's Dockerfile
// ---------------------------------------------------------------------------------------------------

/** A change to upstream's Dockerfile: which line, why, and what replaced it. */
interface Adjustment {
  readonly line: string;
  readonly replacement: string | undefined;
  readonly why: string;
  /** needs the internet, or does not build at all as generated */
  readonly kind: 'internet' | 'upstream bug';
}

/**
 * Upstream writes cog.yaml's environment as one unquoted `ENV A=x B=y` line, so a value with a space
 * (`GREETING=hi there`) is a Dockerfile syntax error. Returns the line with each value double-quoted, or
 * undefined when the line parses as it is.
 */
function quoteEnvLine(line: string): string | undefined {
  if (!line.startsWith('ENV ') || line.includes('"')) return undefined;
  const words = line.slice(4).trim().split(/\s+/);
  if (words.every((w) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(w))) return undefined;
  const pairs: [string, string][] = [];
  for (const word of words) {
    const pair = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(word);
    const last = pairs[pairs.length - 1];
    if (pair?.[1] !== undefined && pair[2] !== undefined) pairs.push([pair[1], pair[2]]);
    else if (last) last[1] += ` ${word}`;
    else return undefined;
  }
  return `ENV ${pairs.map(([k, v]) => `${k}="${v.replace(/["\\]/g, '\\$&')}"`).join(' ')}`;
}

/**
 * Changes only the lines of upstream's generated Dockerfile that need the internet (beyond the package
 * registries and the test bed's mirrored images), and fails on any other line that would.
 */
function adjustUpstream(dockerfile: string): { text: string; adjustments: Adjustment[] } {
  const adjustments: Adjustment[] = [];
  const lines = dockerfile.split('\n');
  const out: string[] = [];
  for (const line of lines) {
    const quoted = quoteEnvLine(line);
    if (quoted !== undefined) {
      adjustments.push({
        line,
        replacement: quoted,
        kind: 'upstream bug',
        why: 'not about the internet: unquoted, a value with a space fails to parse ("can\'t find = in")',
      });
      out.push(quoted);
      continue;
    }
    if (/^#\s*syntax=/.test(line)) {
      adjustments.push({
        line,
        replacement: undefined,
        kind: 'internet',
        why:
          'it pulls the docker/dockerfile frontend image from Docker Hub, which the test bed does not ' +
          "mirror; buildkitd's built-in dockerfile.v0 frontend (v0.32.2, a superset of 1.4) parses the file",
      });
      continue;
    }
    if (/apt-get install -qqy --no-install-recommends curl; \\$/.test(line)) {
      const replacement = line.replace('curl;', 'curl tini;');
      adjustments.push({
        line,
        replacement,
        kind: 'internet',
        why: 'tini from Debian (as ours does), replacing the download below',
      });
      out.push(replacement);
      continue;
    }
    if (/curl .*https:\/\/github\.com\/krallin\/tini\//.test(line)) {
      const replacement = 'ln -sf /usr/bin/tini /sbin/tini; \\';
      adjustments.push({ line, replacement, kind: 'internet', why: 'tini was downloaded from GitHub' });
      out.push(replacement);
      continue;
    }
    if (/https?:\/\/|uv python install/.test(line)) {
      throw new Error(`upstream's Dockerfile needs the internet here and no adjustment is known:\n${line}`);
    }
    out.push(line);
  }
  return { text: out.join('\n'), adjustments };
}

interface Upstream {
  readonly cog: string;
  readonly stage: string;
}

async function buildUpstreamCli(tb: Testbed): Promise<Upstream> {
  const result = await exec('bash', [join(repoRoot, 'scripts', 'upstream-cog.sh')], {
    env: { ...tb.env, UPSTREAM_COG_VERSION: upstreamVersion },
  });
  if (result.code !== 0) throw new Error(`scripts/upstream-cog.sh failed:\n${result.stderr}`);
  const cog = result.stdout.trim().split('\n').pop() ?? '';
  return { cog, stage: join(cog, '..', `cog-stage-${upstreamVersion}`) };
}

/** A stand-in Docker Engine endpoint: `cog debug` only pings the daemon before generating. */
async function fakeDockerEndpoint(socket: string): Promise<{ close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const ping = /\/_ping$/.test(req.url ?? '');
    res.writeHead(ping ? 200 : 501, { 'Api-Version': '1.47', Ostype: 'linux', 'Content-Type': 'text/plain' });
    res.end(ping ? 'OK' : '{"message":"not a Docker daemon"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, resolve);
  });
  return { close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Writes upstream's Dockerfile and cog_build context for a project; returns the Dockerfile as generated. */
async function stageUpstream(
  tb: Testbed,
  upstream: Upstream,
  project: string,
  stageDir: string,
): Promise<{ generated: string; adjustments: Adjustment[] }> {
  const staged = await exec(upstream.stage, [join(stageDir, 'cog_build')], { env: tb.env, cwd: project });
  // model.NewSource opens .cog/ in the project; upstream's cog build keeps .cog out of the context
  await rm(join(project, '.cog'), { recursive: true, force: true });
  if (staged.code !== 0) throw new Error(`cog-stage failed in ${project}:\n${staged.stderr}`);
  const generated = staged.stdout.trimEnd();
  const { text, adjustments } = adjustUpstream(generated);
  await mkdir(join(stageDir, 'dockerfile'), { recursive: true });
  await writeFile(join(stageDir, 'dockerfile', 'Dockerfile'), `${text}\n`);
  return { generated, adjustments };
}

/** What `cog debug` prints for the project, for checking cog-stage's output against. */
async function upstreamDebug(tb: Testbed, upstream: Upstream, project: string, socket: string) {
  const out = await exec(upstream.cog, ['debug', '--use-cog-base-image=false'], {
    env: { ...tb.env, DOCKER_HOST: `unix://${socket}` },
    cwd: project,
  });
  await rm(join(project, '.cog'), { recursive: true, force: true });
  if (out.code !== 0) throw new Error(`cog debug failed in ${project}:\n${out.stderr}`);
  return out.stdout.trimEnd();
}

// ---------------------------------------------------------------------------------------------------
// builds
// ---------------------------------------------------------------------------------------------------

function imageRef(tb: Testbed, fixture: string, tool: Tool): string {
  return `${tb.registry}/cogts-bench/${fixture}-${tool}:${runTag}`;
}

async function buildOurs(
  tb: Testbed,
  fixture: Fixture,
  store: string,
  extraArgs: readonly string[] = [],
): Promise<{ ms: number; out: string }> {
  const start = performance.now();
  const out = await exec(
    ourCli,
    // upstream's Dockerfile is generated with --use-cog-base-image=false: the same base for both
    [
      'build',
      '-t',
      imageRef(tb, fixture.name, 'ours'),
      '--push',
      '--progress',
      'plain',
      '--use-cog-base-image=false',
      ...extraArgs,
    ],
    {
      env: { ...tb.env, COG_IMAGE_STORE: store, XDG_CACHE_HOME: join(store, '..', 'cache') },
      cwd: fixture.dirs.ours,
    },
  );
  const ms = performance.now() - start;
  if (out.code !== 0) throw new Error(`our cog build of ${fixture.name} failed:\n${out.stderr.slice(-4000)}`);
  return { ms, out: out.stderr };
}

async function buildUpstream(
  tb: Testbed,
  upstream: Upstream,
  fixture: Fixture,
  stageDir: string,
): Promise<{ ms: number; out: string }> {
  const start = performance.now();
  // upstream's cog build generates the Dockerfile and stages .cog/build on every build
  await stageUpstream(tb, upstream, fixture.dirs.upstream, stageDir);
  // the solve options of upstream's pkg/docker/buildkit.go, with a push instead of the moby exporter
  const out = await exec(
    'buildctl',
    [
      'build',
      '--progress',
      'plain',
      '--frontend',
      'dockerfile.v0',
      '--local',
      `context=${fixture.dirs.upstream}`,
      '--local',
      `dockerfile=${join(stageDir, 'dockerfile')}`,
      '--local',
      `cog_build=${join(stageDir, 'cog_build')}`,
      '--opt',
      'filename=Dockerfile',
      '--opt',
      'platform=linux/amd64',
      '--opt',
      'context:cog_build=local:cog_build',
      '--export-cache',
      'type=inline',
      '--output',
      `type=image,name=${imageRef(tb, fixture.name, 'upstream')},push=true`,
    ],
    { env: tb.env },
  );
  const ms = performance.now() - start;
  if (out.code !== 0)
    throw new Error(`upstream build of ${fixture.name} failed:\n${out.stderr.slice(-4000)}`);
  return { ms, out: out.stderr };
}

/** Median wall time of a command that does no build: the fixed cost of starting a CLI. */
async function startupMs(
  tb: Testbed,
  program: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv = tb.env,
) {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    const out = await exec(program, args, { env, cwd });
    times.push(performance.now() - start);
    if (out.code !== 0) throw new Error(`${program} ${args.join(' ')} failed:\n${out.stderr}`);
  }
  await rm(join(cwd, '.cog'), { recursive: true, force: true });
  return median(times);
}

/**
 * Empties the daemon's cache, and checks that it is empty: records a long-running daemon still holds a
 * reference to survive `prune --all` (after the test suite, the hello fixture's steps did, and our
 * "cold" build ran 2 steps of 8). A restarted daemon holds none.
 */
async function pruneAll(tb: Testbed): Promise<void> {
  const out = await exec('buildctl', ['prune', '--all'], { env: tb.env });
  if (out.code !== 0) throw new Error(`buildctl prune --all failed:\n${out.stderr}`);
  const du = await exec('buildctl', ['du'], { env: tb.env });
  const total = /^Total:\s+(\S+)/m.exec(du.stdout)?.[1];
  if (du.code !== 0 || total !== '0B') {
    throw new Error(
      `buildctl prune --all left ${total ?? 'an unknown amount'} in the cache, so a cold build would not be cold\n` +
        'hint: restart the test bed\u2019s daemon (scripts/testbed down && scripts/testbed up) and run the bench again',
    );
  }
}

/** The file named by cog.yaml's `run:` (or `predict:`) entry. */
async function predictorOf(project: string): Promise<string> {
  const config = parseYaml(await readFile(join(project, 'cog.yaml'), 'utf8')) as {
    run?: string;
    predict?: string;
  };
  const ref = config.run ?? config.predict;
  if (!ref) throw new Error(`${project}/cog.yaml names no predictor`);
  return ref.split(':')[0] ?? ref;
}

// ---------------------------------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------------------------------

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
        .join('  '),
    )
    .join('\n');
}

function report(runs: readonly Run[], fixtures: readonly string[]): boolean {
  const rows: string[][] = [
    ['fixture', 'case', 'upstream s', 'ours s', 'ours/upstream', 'target', 'met', 'steps run (up/ours)'],
  ];
  let allMet = true;
  const cases: Case[] = ['cold', 'no-op', 'no-op --pull', 'source-only'];
  const totals = new Map<Case, { up: number; ours: number }>();
  for (const fixture of fixtures) {
    for (const kind of cases) {
      const pick = (tool: Tool) =>
        runs.filter((r) => r.fixture === fixture && r.kind === kind && r.tool === tool);
      const up = median(pick('upstream').map((r) => r.wallMs)) / 1000;
      const ours = median(pick('ours').map((r) => r.wallMs)) / 1000;
      const steps = (tool: Tool) => median(pick(tool).map((r) => r.ran.length)).toString();
      const ratio = ours / up;
      const target = targets[kind];
      const met = target === undefined || ratio <= target;
      allMet &&= met;
      const total = totals.get(kind) ?? { up: 0, ours: 0 };
      totals.set(kind, { up: total.up + up, ours: total.ours + ours });
      rows.push([
        fixture,
        kind,
        up.toFixed(2),
        ours.toFixed(2),
        `${ratio.toFixed(2)}x`,
        target === undefined ? '-' : `<= ${target.toFixed(1)}x`,
        target === undefined ? '-' : met ? 'yes' : 'NO',
        `${steps('upstream')}/${steps('ours')}`,
      ]);
    }
  }
  for (const kind of cases) {
    const total = totals.get(kind);
    if (!total) continue;
    const ratio = total.ours / total.up;
    const target = targets[kind];
    rows.push([
      'all (sum)',
      kind,
      total.up.toFixed(2),
      total.ours.toFixed(2),
      `${ratio.toFixed(2)}x`,
      target === undefined ? '-' : `<= ${target.toFixed(1)}x`,
      target === undefined ? '-' : ratio <= target ? 'yes' : 'NO',
      '',
    ]);
  }
  console.log(
    `\ncog build: ours vs upstream Cog ${upstreamVersion}'s Dockerfile on the same buildkitd, both pushed ` +
      `to the test bed registry; wall seconds, median of ${coldIterations} cold / ${iterations} warm runs`,
  );
  console.log(table(rows));
  return allMet;
}

// ---------------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const tb = await ensureTestbed();
  console.log(`building upstream Cog ${upstreamVersion}'s CLI (cached after the first time)`);
  const upstream = await buildUpstreamCli(tb);
  const work = await mkdtemp(join(tmpdir(), 'cogts-build-bench-'));
  const socket = join(work, 'docker.sock');
  const docker = await fakeDockerEndpoint(socket);
  const runs: Run[] = [];
  const allAdjustments = new Map<string, Adjustment>();
  const started = performance.now();
  let startup: { ours: number; upstream: number; node: number; nodeWithoutExtraCa?: number } | undefined;
  try {
    for (const [index, name] of fixtureNames.entries()) {
      const dirs = { ours: join(work, 'ours', name), upstream: join(work, 'upstream', name) };
      for (const dir of Object.values(dirs)) {
        await cp(join(repoRoot, 'fixtures', 'models', name), dir, { recursive: true });
      }
      const fixture: Fixture = { name, dirs, predictor: await predictorOf(dirs.ours) };
      const stageDir = join(work, 'stage', name);

      // upstream's Dockerfile: cog debug's output and the staged one must be the same
      const debug = await upstreamDebug(tb, upstream, dirs.upstream, socket);
      const { generated, adjustments } = await stageUpstream(tb, upstream, dirs.upstream, stageDir);
      if (debug !== generated) {
        throw new Error(`cog debug and cog-stage disagree for ${name}:\n${debug}\n---\n${generated}`);
      }
      for (const a of adjustments) allAdjustments.set(a.line, a);
      startup ??= {
        ours: await startupMs(tb, ourCli, ['--version'], dirs.ours),
        // the floor of any Node CLI on this machine
        node: await startupMs(tb, process.execPath, ['-e', '0'], dirs.ours),
        // what Node's start costs without parsing NODE_EXTRA_CA_CERTS, which bin/cog keeps from it
        ...(tb.env.NODE_EXTRA_CA_CERTS
          ? {
              nodeWithoutExtraCa: await startupMs(tb, process.execPath, ['-e', '0'], dirs.ours, {
                ...tb.env,
                NODE_EXTRA_CA_CERTS: '',
              }),
            }
          : {}),
        upstream: await startupMs(tb, upstream.stage, [join(work, 'startup-stage')], dirs.upstream),
      };
      if (verbose) console.log(`--- upstream Dockerfile for ${name} (as generated)\n${generated}\n---`);

      const build = async (tool: Tool, extraArgs: readonly string[] = []) =>
        tool === 'ours'
          ? await buildOurs(tb, fixture, join(work, 'store'), extraArgs)
          : await buildUpstream(tb, upstream, fixture, stageDir);
      const record = async (tool: Tool, kind: Case, iteration: number) => {
        const { ms, out } = await build(tool, kind === 'no-op --pull' ? ['--pull'] : []);
        const ran = stepsFromPlainProgress(out).ran;
        if (logDir) {
          await mkdir(logDir, { recursive: true });
          await writeFile(join(logDir, `${name}-${kind}-${iteration}-${tool}.log`), out);
        }
        runs.push({ fixture: name, tool, kind, iteration, wallMs: ms, ran });
        console.log(
          `  ${name.padEnd(16)} ${kind.padEnd(11)} #${iteration} ${tool.padEnd(8)} ${(ms / 1000).toFixed(2).padStart(7)} s, ${ran.length} steps ran` +
            (verbose ? `: ${ran.join(' | ')}` : ''),
        );
      };
      // alternate which tool goes first, across fixtures and iterations
      const order = (i: number): Tool[] =>
        (index + i) % 2 === 0 ? ['ours', 'upstream'] : ['upstream', 'ours'];

      for (let i = 0; i < coldIterations; i++) {
        for (const tool of order(i)) {
          await pruneAll(tb);
          // cold: no BuildKit cache and no build record either (ours keeps them in WORK/cache)
          await rm(join(work, 'cache'), { recursive: true, force: true });
          await record(tool, 'cold', i);
        }
      }
      // the cold run that went first lost its cache to the other's prune: rebuild it, uncounted
      // (ours with --pull, or its build record would answer without filling BuildKit's cache)
      const first = order(coldIterations - 1)[0];
      if (first) await build(first, ['--pull']);

      for (const kind of ['no-op', 'no-op --pull'] as const) {
        for (let i = 0; i < iterations; i++) {
          for (const tool of order(i)) await record(tool, kind, i);
        }
      }
      for (let i = 0; i < iterations; i++) {
        for (const dir of Object.values(dirs)) {
          const file = join(dir, fixture.predictor);
          await writeFile(file, `${await readFile(file, 'utf8')}\n# bench edit ${i}\n`);
        }
        for (const tool of order(i)) await record(tool, 'source-only', i);
      }
    }
  } finally {
    await docker.close();
    await rm(work, { recursive: true, force: true });
  }

  const allMet = report(runs, fixtureNames);
  if (startup) {
    console.log(
      `fixed costs (median of 3): Node starting (\`node -e 0\`) ${(startup.node / 1000).toFixed(2)} s` +
        (startup.nodeWithoutExtraCa === undefined
          ? '; '
          : ` (${(startup.nodeWithoutExtraCa / 1000).toFixed(2)} s without parsing NODE_EXTRA_CA_CERTS); `) +
        `our CLI starting (\`cog --version\`) ${(startup.ours / 1000).toFixed(2)} s; ` +
        `upstream's Dockerfile generation and staging (cog-stage) ${(startup.upstream / 1000).toFixed(2)} s`,
    );
  }
  console.log(`\nbench time ${((performance.now() - started) / 60_000).toFixed(1)} min`);
  console.log(
    `targets (cold <= 1.0x, no-op <= 0.5x, source-only <= 0.7x; no-op --pull has none): ${allMet ? 'all met' : 'NOT all met'}`,
  );
  for (const kind of ['internet', 'upstream bug'] as const) {
    const these = [...allAdjustments.values()].filter((a) => a.kind === kind);
    if (these.length === 0) continue;
    console.log(
      kind === 'internet'
        ? '\nadjustments to upstream\u2019s Dockerfile (lines needing the internet):'
        : '\nadjustments to upstream\u2019s Dockerfile that are not about the internet (it fails without them):',
    );
    for (const a of these) {
      console.log(
        `  - ${a.line}\n    ${a.replacement === undefined ? 'removed' : `-> ${a.replacement}`}  (${a.why})`,
      );
    }
  }
}

await main();
