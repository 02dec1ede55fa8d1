/**
 * The up-to-date check of `cog build`: when the same command already built in this directory and
 * nothing it read has changed since (see build/build-record.ts), the image it made is still there
 * (in the local image store, or under its tag in the registry for --push) and git reports the same
 * revision, the build is answered from its record: no buildkitd connection, no solve. Anything that
 * does not match, or any error while checking, means "not up to date": the build then runs normally.
 *
 * Loaded before the rest of the CLI (see entry.ts), so it imports only what the check needs. For a
 * record of a push, a registry on this machine or the insecure list is first asked with one
 * credential-free HEAD (registry/open-probe.ts); the registry client is loaded only when that does
 * not answer (credentials or TLS wanted) and for every other registry.
 */
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import {
  type BuildRecord,
  type RecordedOutput,
  inputsUnchanged,
  readRecord,
  recordKey,
  recordsDir,
} from '../build/build-record.js';
import { gitLabels } from '../build/host-facts.js';
import { sourceRecordsDir } from '../build/source-record.js';
import { ImageStore } from '../image/store.js';
import { probeManifest } from '../registry/open-probe.js';
import type { CommandIo } from './debug-solve.js';

declare const COG_BUILD_ID: string | undefined;

/**
 * The id of this cog-ts build (a hash of its compiled code, package.json and lockfile, set by
 * scripts/bundle.mjs; the compatibility data is fingerprinted as an input instead).
 * Undefined when running from unbundled modules: records are then neither written nor used.
 */
export function cogBuildId(): string | undefined {
  return typeof COG_BUILD_ID === 'string' ? COG_BUILD_ID : undefined;
}

/** The record key of `cog build ARGV` run in `cwd`, or undefined when records are not used. */
export function buildRecordKey(
  argv: readonly string[],
  cwd: string,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const buildId = cogBuildId();
  if (!buildId) return undefined;
  return recordKey({ buildId, cwd: realpathSync(cwd), argv, env });
}

async function gitUnchanged(record: BuildRecord, env: NodeJS.ProcessEnv): Promise<boolean> {
  const project = record.inputs.find((i) => i.project)?.path;
  if (!project) return false;
  const recorded = record.git;
  const now = await gitLabels(project, env);
  return now.revision === recorded.revision && now.version === recorded.version;
}

/**
 * Whether the store holds every blob of the manifest `digest`: its config and layers, or for an index
 * (a multi-platform image) every image it lists; each of the size its descriptor gives (a copy cut
 * short sends the build down the normal path, which names it).
 */
async function storeHasAll(store: ImageStore, digest: string, size?: number, depth = 0): Promise<boolean> {
  if (depth > 2 || !store.hasBlob(digest, size)) return false;
  const manifest = JSON.parse((await store.readBlob(digest)).toString('utf8')) as {
    config?: { digest: string; size: number };
    layers?: { digest: string; size: number }[];
    manifests?: { digest: string; size: number }[];
  };
  if (Array.isArray(manifest.manifests)) {
    if (manifest.manifests.length === 0) return false;
    for (const child of manifest.manifests)
      if (!(await storeHasAll(store, child.digest, child.size, depth + 1))) return false;
    return true;
  }
  if (!manifest.config) return false;
  return [manifest.config, ...(manifest.layers ?? [])].every((d) => store.hasBlob(d.digest, d.size));
}

/** Whether the store still files the recorded image under its name, with every blob of it. */
async function storeHasImage(root: string, record: BuildRecord): Promise<boolean> {
  const store = new ImageStore(root);
  const found = await store.resolve(record.imageName);
  if (found?.digest !== record.digest) return false;
  return storeHasAll(store, record.digest);
}

/** Whether the registry still has the recorded digest under the pushed tag. */
async function registryHasImage(
  output: Extract<RecordedOutput, { kind: 'push' }>,
  record: BuildRecord,
  env: NodeJS.ProcessEnv,
): Promise<boolean> {
  if (output.probe) {
    // a registry on this machine or the insecure list: one credential-free HEAD over plain HTTP,
    // without loading the full client; it answers unless the registry wants credentials or TLS
    const answer = await probeManifest(output.probe);
    if (answer.kind === 'found') return answer.digest === record.digest;
    if (answer.kind === 'missing') return false;
  }
  const [
    { RegistryClient },
    { headManifest },
    { parseReference, manifestReference },
    { defaultRetryPolicy },
  ] = await Promise.all([
    import('../registry/client.js'),
    import('../registry/manifests.js'),
    import('../registry/reference.js'),
    import('../registry/retry.js'),
  ]);
  const parsed = parseReference(output.ref);
  // one try: a registry that does not answer at once sends the build down the normal path
  const client = new RegistryClient({ env, retry: { ...defaultRetryPolicy, attempts: 1 } });
  try {
    const found = await headManifest(client, parsed, manifestReference(parsed));
    return found?.digest === record.digest;
  } finally {
    await client.close();
  }
}

/** The line that says the build was answered from its record. */
export function upToDateLine(record: Pick<BuildRecord, 'builtAt'>): string {
  return `cog: up to date: nothing this build reads has changed since ${record.builtAt}, so nothing was solved (base image tags are not looked up again; --pull does)\n`;
}

/** A tarball `cog build --output type=oci|docker|tar,dest=FILE` wrote (`-` = stdout). */
export interface WrittenFile {
  readonly type: 'oci' | 'docker' | 'tar';
  readonly dest: string;
}

const fileName = (file: WrittenFile) => (file.dest === '-' ? 'stdout' : file.dest);

/**
 * The closing line every `cog build` prints: the image and where it went (the store, its registry, the
 * image tarballs in `files`). A type=tar file holds the root filesystem, not an image: with nothing else
 * written there is no digest and no image of that name anywhere, and the line says so.
 */
export function builtLine(
  imageName: string,
  digest: string,
  output: RecordedOutput | undefined,
  files: readonly WrittenFile[] = [],
): string {
  const images = files.filter((f) => f.type !== 'tar');
  const roots = files.filter((f) => f.type === 'tar');
  const rootsText = roots.map(fileName).join(', ');
  if (!digest && !output && images.length === 0 && roots.length > 0)
    return `Root filesystem written to ${rootsText} (type=tar: the built files, not an image; no image ${imageName} was stored)\n`;
  const where =
    output?.kind === 'store' ? ` (local image store ${output.root})` : output ? ' and pushed' : '';
  const written = images.map((f) => `${fileName(f)} (type=${f.type})`).join(', ');
  return `Image built as ${imageName}${digest ? `@${digest}` : ''}${where}${
    written ? `, written to ${written}` : ''
  }${rootsText ? `; its root filesystem to ${rootsText} (type=tar)` : ''}\n`;
}

/**
 * The environment `cog build ARGV` builds with. The global `--registry HOST` becomes COG_REGISTRY_HOST
 * in main.ts's middleware, which runs after this check: without the same step here the check's key
 * would never equal the recorded one (the last `--registry` given wins, as there).
 */
export function buildEnvironment(argv: readonly string[], env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  let registry: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') break;
    if (arg === '--registry') registry = argv[++i];
    else if (arg.startsWith('--registry=')) registry = arg.slice('--registry='.length);
  }
  return registry ? { ...env, COG_REGISTRY_HOST: registry } : env;
}

/** Whether `cog build ARGV` has a source record (see cli/source-entry.ts): one `existsSync`. */
export function hasSourceRecord(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv): boolean {
  try {
    const withRegistry = buildEnvironment(argv, env);
    const key = buildRecordKey(argv, cwd, withRegistry);
    return key !== undefined && existsSync(join(sourceRecordsDir(withRegistry), `${key}.json`));
  } catch {
    return false;
  }
}

/**
 * Answers `cog build ARGV` from its record when it is up to date (printing what a build prints) and
 * resolves to true; false means the caller must build.
 */
export async function upToDateBuild(argv: readonly string[], io: CommandIo, cwd: string): Promise<boolean> {
  try {
    const env = buildEnvironment(argv, io.env);
    const key = buildRecordKey(argv, cwd, env);
    if (!key) return false;
    const record = readRecord(recordsDir(env), key);
    if (!record || !inputsUnchanged(record) || !(await gitUnchanged(record, env))) return false;
    const present =
      record.output.kind === 'store'
        ? await storeHasImage(record.output.root, record)
        : await registryHasImage(record.output, record, env);
    if (!present) return false;
    for (const note of record.notes) io.stderr.write(note);
    io.stderr.write(upToDateLine(record));
    io.stderr.write(builtLine(record.imageName, record.digest, record.output));
    return true;
  } catch {
    return false;
  }
}
