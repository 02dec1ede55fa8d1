/**
 * Build records: after `cog build` has solved on buildkitd, what it made (the image's name and
 * digest, where it went) and a fingerprint of everything it read, keyed by the command line. Running
 * the same command again with nothing changed is then answered from the record without a solve
 * (cli/up-to-date.ts), the way make answers an up-to-date target.
 *
 * The key covers the cog-ts build, the working directory, the arguments as typed and the environment
 * variables a build can read (`affectsBuild`); the fingerprints cover the project tree and the files
 * outside it the build read (config file, wheels, CA certificate, schema file, compatibility data).
 * A fingerprint is made of `lstat` facts (path, type, mode, size, mtime, ctime, inode, link target),
 * like git's index: nothing is read, so a 10 GB weights file costs one `lstat`.
 *
 * What a record cannot see: base image tags moving in their registry (a record-answered build does
 * not look them up again, like Docker's builder without `--pull`; `cog build --pull` always solves).
 */
import type { ProbeTarget } from '../registry/open-probe.js';
import { createHash } from 'node:crypto';
import {
  type BigIntStats,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { ContextFilter, readDockerignoreSync } from '../buildkit/patterns.js';
import { userDir } from '../user-dirs.js';

/** Bumped when the record's shape or meaning changes: older records are then ignored. */
export const recordFormat = 1;

/** Files changed this recently (ns) when a build starts may change again within the clock's granularity. */
const racyWindowNs = 2_000_000_000n;

export interface InputFingerprint {
  readonly path: string;
  /** the project tree: `.git` is left out when `.dockerignore` leaves it out of the image */
  readonly project?: boolean;
  readonly hash: string;
}

export type RecordedOutput =
  | { readonly kind: 'store'; readonly root: string }
  | {
      readonly kind: 'push';
      readonly ref: string;
      /** where a credential-free HEAD may ask first (a registry on this machine or the insecure list) */
      readonly probe?: ProbeTarget;
    };

export interface BuildRecord {
  readonly format: typeof recordFormat;
  readonly key: string;
  /** when the recorded build started (ISO 8601) */
  readonly builtAt: string;
  readonly imageName: string;
  /** the manifest digest */
  readonly digest: string;
  readonly output: RecordedOutput;
  readonly inputs: readonly InputFingerprint[];
  /** org.opencontainers.image.revision/version as the build found them */
  readonly git: { readonly revision?: string; readonly version?: string };
  /** what the build printed besides progress (warnings, the smoke test's result), shown again */
  readonly notes: readonly string[];
}

const envPrefixes = ['COG', 'BUILDKIT', 'DOCKER', 'XDG_', 'GIT_', 'GITHUB_', 'SSL_CERT_', 'NODE_'];
const envNames = new Set([
  'SOURCE_DATE_EPOCH',
  'HOME',
  'PATH',
  'TMPDIR',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
]);

/**
 * Credentials (COG_REGISTRY_PASSWORD, DOCKER_AUTH_CONFIG, a *_TOKEN…) decide who may push, not what is
 * built, and stay out of the key: its hash is a file name anyone who can list the directory reads, and a
 * weak password could be guessed from it offline.
 */
export function isCredentialVariable(name: string): boolean {
  return /PASSWORD|TOKEN|SECRET|AUTH|CREDENTIAL/i.test(name);
}

/**
 * Variables that change how a build is shown or how its image travels, never what it makes or where
 * it goes: a build run again with another progress mode or upload concurrency is the same build.
 */
const presentationVariables = new Set([
  'BUILDKIT_PROGRESS',
  'BUILDKIT_TTY_LOG_LINES',
  'BUILDKIT_COLORS',
  'COG_NO_COLOR',
  'COG_PUSH_CONCURRENCY',
  'COG_PUSH_DEFAULT_CHUNK_SIZE',
  'COG_PUSH_MULTIPART_THRESHOLD',
]);

export function isPresentationVariable(name: string): boolean {
  return presentationVariables.has(name.toUpperCase());
}

/**
 * Whether an environment variable can change what `cog build` makes or where it goes, so belongs in
 * the record key. A unit test checks every variable the sources read against this.
 */
export function affectsBuild(name: string): boolean {
  const upper = name.toUpperCase();
  if (isCredentialVariable(upper) || presentationVariables.has(upper)) return false;
  return envNames.has(upper) || envPrefixes.some((p) => upper.startsWith(p));
}

/** Flags that only change what is printed (with their values), left out of the record key. */
const presentationFlags = new Set(['--progress', '--color', '--no-color', '--debug']);
/** …and those of them that take a separate value (`--progress plain`). */
const presentationFlagsWithValue = new Set(['--progress']);

/** The command line without its presentation flags: `--progress plain` builds what `--progress tty` does. */
export function keyArguments(argv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      kept.push(...argv.slice(i));
      break;
    }
    const flag = arg.split('=')[0]!;
    if (!presentationFlags.has(flag)) kept.push(arg);
    else if (!arg.includes('=') && presentationFlagsWithValue.has(flag)) i++;
  }
  return kept;
}

/** The value of `--progress` in a command line (the last one given), as the CLI will read it. */
export function progressFlag(argv: readonly string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    // given last with no value: '' (no mode), which the CLI refuses too
    if (arg === '--progress') value = argv[++i] ?? '';
    else if (arg.startsWith('--progress=')) value = arg.slice('--progress='.length);
  }
  return value;
}

/** The record key of a command: the same key means the same build request. */
export function recordKey(request: {
  readonly buildId: string;
  readonly cwd: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
}): string {
  const env = Object.entries(request.env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined && affectsBuild(entry[0]))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const argv = keyArguments(request.argv);
  const material = JSON.stringify([recordFormat, request.buildId, request.cwd, argv, env]);
  return createHash('sha256').update(material).digest('hex');
}

/** Where records live: $XDG_CACHE_HOME/cog-ts/build-records, else ~/.cache/…. */
export function recordsDir(env: Readonly<Record<string, string | undefined>>): string {
  return join(userDir(env, 'cache'), 'cog-ts', 'build-records');
}

/** The record stored under `key`, or undefined (none, unreadable, another format). */
export function readRecord(dir: string, key: string): BuildRecord | undefined {
  return readRecordFile<BuildRecord>(dir, key, recordFormat);
}

/** The JSON record `key` in `dir` when it has `format`, else undefined (none, unreadable, another format). */
export function readRecordFile<T extends { readonly key: string; readonly format: number }>(
  dir: string,
  key: string,
  format: number,
): T | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, `${key}.json`), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const record = JSON.parse(text) as T;
    return record.format === format && record.key === key ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The most records kept: a CI runner building in fresh directories would otherwise add one per build. */
export const maxRecords = 200;

/**
 * Stores a record atomically (a concurrent reader sees the old record or the new one), and removes
 * the least recently written records beyond `maxRecords`.
 */
export function writeRecord(dir: string, record: { readonly key: string }, keep = maxRecords): void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${record.key}.json`);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(record)}\n`);
  renameSync(temp, file);
  const records = readdirSync(dir).filter((name) => name.endsWith('.json'));
  if (records.length <= keep) return;
  const byAge = records
    .map((name) => ({ name, mtime: statSync(join(dir, name)).mtimeMs }))
    .sort((a, b) => a.mtime - b.mtime);
  for (const { name } of byAge.slice(0, records.length - keep)) rmSync(join(dir, name), { force: true });
}

/** A fingerprint of `path` (a file, a directory tree, or nothing) and its newest change time (ns). */
export function fingerprintPath(path: string, project = false): { hash: string; newestNs: bigint } {
  const hash = createHash('sha256');
  let newestNs = 0n;
  const visit = (abs: string, rel: string, skip: (rel: string) => boolean) => {
    let st;
    try {
      st = lstatSync(abs, { bigint: true });
    } catch {
      hash.update(`${rel}\0missing\n`);
      return;
    }
    const changed = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
    if (changed > newestNs) newestNs = changed;
    hash.update(`${rel}\0${statFacts(st)}`);
    // a link: where it points, and what is there now (the client may read through it, e.g. a
    // requirements file that links out of the project)
    if (st.isSymbolicLink()) hash.update(`\0${readlinkSync(abs)}\0${targetFacts(abs)}`);
    hash.update('\n');
    if (!st.isDirectory()) return;
    const names = readdirSync(abs).sort();
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (!skip(childRel)) visit(join(abs, name), childRel, skip);
    }
  };
  visit(path, '', project ? projectSkip(path) : () => false);
  return { hash: hash.digest('hex'), newestNs };
}

/** What a fingerprint keeps of one entry: any write, chmod, replacement or rename moves one of these. */
function statFacts(st: BigIntStats): string {
  return `${st.mode}\0${st.size}\0${st.mtimeNs}\0${st.ctimeNs}\0${st.ino}`;
}

function targetFacts(abs: string): string {
  try {
    return statFacts(statSync(abs, { bigint: true }));
  } catch {
    return 'dangling';
  }
}

/** `.git` is skipped when `.dockerignore` keeps it (and everything below it) out of the image. */
function projectSkip(dir: string): (rel: string) => boolean {
  // the patterns are checked as they are read (a malformed one throws, as the build itself does)
  const patterns = readDockerignoreSync(dir);
  const skipGit =
    patterns.length > 0 && new ContextFilter({ exclude: patterns }).check('.git', true).decision === 'skip';
  return (rel) => skipGit && rel === '.git';
}

/**
 * Fingerprints the inputs of a build that started at `startedAtNs`. Undefined when something changed
 * within the racy window: the build may have read it before or after the change, so no record.
 */
export function fingerprintInputs(
  inputs: readonly { readonly path: string; readonly project?: boolean }[],
  startedAtNs: bigint,
): InputFingerprint[] | undefined {
  const out: InputFingerprint[] = [];
  for (const input of inputs) {
    const { hash, newestNs } = fingerprintPath(input.path, input.project === true);
    if (newestNs >= startedAtNs - racyWindowNs) return undefined;
    out.push({ path: input.path, ...(input.project ? { project: true } : {}), hash });
  }
  return out;
}

/** Whether every recorded input has the fingerprint it had. */
export function inputsUnchanged(record: Pick<BuildRecord, 'inputs'>): boolean {
  return record.inputs.every(
    (input) => fingerprintPath(input.path, input.project === true).hash === input.hash,
  );
}
