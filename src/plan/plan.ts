/**
 * PlanInput → BuildPlan: the steps of upstream Cog's generated Dockerfile (python-slim, nvidia/cuda or
 * cog-base base), in the same order and with the same commands, except where upstream reaches past
 * package indexes: tini comes from apt instead of a GitHub download.
 */
import type { BuildPlan, CacheMount, PlanInput, PlanStep, WheelSource } from './types.js';
import { weightExcludes } from './weights.js';

export const defaultUvImage = 'ghcr.io/astral-sh/uv:0.9.26';
/** What run.cog.pip_freeze holds: pip's freeze, or uv's where the image has no pip. */
export const freezeCommand = 'python -m pip freeze --disable-pip-version-check 2>/dev/null || uv pip freeze';
export const aptCache: CacheMount = { target: '/var/cache/apt', sharing: 'locked' };
const pipCache: CacheMount = { target: '/root/.cache/pip', sharing: 'shared' };
/**
 * Every step that runs uv mounts its cache: uv writes one there even for `uv run pip`, and its
 * interpreter entry records the ctime of the Python binary in buildkitd's snapshot (not a property of
 * the image), which would make the layer, and so the image digest, differ from one daemon or snapshot
 * to the next even with --timestamp.
 */
const uvCache: CacheMount = { target: '/root/.cache/uv', sharing: 'shared' };
const optimisingCflags = '-O3 -funroll-loops -fno-strict-aliasing -flto -S';
/**
 * apt's package lists live in a cache mount, one per base image (a Debian list is no use on Ubuntu):
 * never in a layer, and a later apt step (system packages after tini) or a rebuild finds them, so its
 * `apt-get update` only asks whether they changed instead of downloading them again.
 */
const aptListsCache = (baseImage: string): CacheMount => ({
  target: '/var/lib/apt/lists',
  sharing: 'locked',
  id: `apt-lists:${baseImage}`,
});
/**
 * After apt: drop the logs and caches that record when they were written, so a rebuild from scratch
 * (with --timestamp) produces the same layer (the lists are in their cache mount, not the layer).
 */
const aptCleanup = 'rm -f /var/log/apt/*.log /var/log/dpkg.log /var/cache/ldconfig/aux-cache';
const caCertPath = '/usr/local/share/ca-certificates/cog-ca-cert.crt';
const systemBundle = '/etc/ssl/certs/ca-certificates.crt';

/** The system packages every cog-base image already holds; system_packages skips them on cog-base. */
export const cogBaseSystemPackages: readonly string[] = [
  'build-essential',
  'cmake',
  'curl',
  'ffmpeg',
  'findutils',
  'g++',
  'gcc',
  'git',
  'libavcodec-dev',
  'libcairo2-dev',
  'libfontconfig1',
  'libgirepository1.0-dev',
  'libgl1',
  'libglx-mesa0',
  'libglib2.0-0',
  'libopencv-dev',
  'libsm6',
  'libsndfile1',
  'libssl-dev',
  'libunistring-dev',
  'libxext6',
  'libxrender1',
  'sox',
  'unzip',
  'wget',
  'zip',
  'zstd',
];

/** CUDA 13 and later cog-base images carry a uv-managed Python (upstream's rule, by major version). */
export function cogBaseHasUvPython(cuda: string | undefined): boolean {
  const major = cuda === undefined ? NaN : Number.parseInt(cuda, 10);
  return Number.isFinite(major) && major >= 13;
}

/**
 * Whether every pip/uv install and uninstall gets --break-system-packages: on nvidia/cuda (uv-managed
 * Python) and on cog-base images with CUDA ≥ 13; never on python-slim.
 */
export function breaksSystemPackages(input: Pick<PlanInput, 'baseKind' | 'cuda'>): boolean {
  if (input.baseKind === 'cuda') return true;
  return input.baseKind === 'cog-base' && cogBaseHasUvPython(input.cuda);
}

/** system_packages still to install: on cog-base, those the base image does not already hold. */
export function systemPackagesToInstall(input: Pick<PlanInput, 'baseKind' | 'systemPackages'>): string[] {
  if (input.baseKind !== 'cog-base') return [...input.systemPackages];
  const inBase = new Set(cogBaseSystemPackages);
  return input.systemPackages.filter((p) => !inBase.has(p));
}

/**
 * The key of the secrets a step mounts, from their content keys (sorted by id, so the order of mounts
 * does not matter); undefined when none of them was given a key.
 */
export function stepSecretsKey(
  secrets: readonly { readonly id: string }[],
  keys: Readonly<Record<string, string>> | undefined,
): string | undefined {
  if (!keys) return undefined;
  const ids = [...new Set(secrets.map((s) => s.id))].filter((id) => keys[id] !== undefined).sort();
  if (ids.length === 0) return undefined;
  return ids.map((id) => `${id}:${keys[id]}`).join(',');
}

/** Local directories (besides the project, `context`) that file wheels are copied from. */
export const wheelContext = (name: 'cog' | 'coglet') => `${name}-wheel`;

function stripSuffix(strip: boolean | undefined): string {
  return strip
    ? ' && find / -type f -name "*python*.so" -not -name "*cpython*.so" -exec strip -S {} \\;'
    : '';
}

/** Packages upstream installs on a CUDA base before fetching Python. */
const pythonBuildTools = ['wget', 'curl', 'xz-utils', 'git', 'ca-certificates'];
/** upstream's entrypoint is /sbin/tini; Debian installs it in /usr/bin */
const tiniLink = 'ln -sf /usr/bin/tini /sbin/tini';

/** One `apt-get install` of the packages a plan needs from the distribution. */
interface AptInstall {
  readonly what: string;
  readonly packages: readonly string[];
  /** system_packages get apt's recommended packages (as upstream); tini and the build tools do not */
  readonly recommends: boolean;
  /** a command to run after the installs */
  readonly then?: string;
}

/** An English list: "a", "a and b", "a, b and c". */
function listed(words: readonly string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

/**
 * One apt step: the package lists updated once, then each install in order, then the clean-up.
 * Its name says what it installs, e.g. "install tini and system packages".
 */
function aptStep(installs: readonly AptInstall[], lists: CacheMount): PlanStep {
  const commands = ['apt-get update -qq'];
  for (const install of installs) {
    const flags = install.recommends ? '-qqy' : '-qqy --no-install-recommends';
    commands.push(`apt-get install ${flags} ${install.packages.map(shellQuote).join(' ')}`);
  }
  commands.push(aptCleanup);
  for (const install of installs) if (install.then) commands.push(install.then);
  return {
    kind: 'run',
    name: `install ${listed(installs.map((i) => i.what))}`,
    shell: commands.join(' && '),
    cache: [aptCache, lists],
  };
}

/**
 * Only the entrypoint uses tini, so its apt step (~4 s, mostly `apt-get update`) can run beside the
 * steps after it, up to the first one that uses apt too (both would write dpkg's database, and a
 * merge keeps one copy) or is the user's (which may use apt or tini): that one sees tini installed.
 * Marks nothing when no work would overlap. `firstUserStep`: where the build.run steps start.
 */
function runTiniBeside(steps: PlanStep[], firstUserStep: number): void {
  const tini = steps.findIndex((s) => s.kind === 'run' && s.name === 'install tini');
  if (tini < 0) return;
  let join = steps.findIndex(
    (s, i) => i > tini && s.kind === 'run' && (i >= firstUserStep || (s.cache ?? []).includes(aptCache)),
  );
  if (join < 0) join = steps.length;
  const overlapping = steps.slice(tini + 1, join).some((s) => s.kind === 'run' || s.kind === 'image-files');
  if (!overlapping) return;
  steps[tini] = { ...(steps[tini] as PlanStep & { kind: 'run' }), independent: true };
  const joining = steps[join];
  if (joining?.kind === 'run') steps[join] = { ...joining, seesBranches: true };
}

/** Quotes a word for /bin/sh when it is not plainly safe. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function wheelInstall(
  name: 'cog' | 'coglet',
  source: WheelSource,
  flags: { breakSystem: string; pre: boolean; strip: boolean | undefined },
): PlanStep[] {
  const pre = flags.pre ? ' --pre' : '';
  const install = `uv pip install${flags.breakSystem}${pre} --no-cache`;
  const steps: PlanStep[] = [
    { kind: 'env', name: 'optimise native builds', env: [['CFLAGS', optimisingCflags]] },
  ];
  if (source.kind === 'file') {
    const file = baseName(source.path);
    steps.push({
      kind: 'context-files',
      name: `copy the ${name} wheel`,
      context: wheelContext(name),
      paths: [file],
      dest: '/tmp',
    });
    steps.push({
      kind: 'run',
      name: `install ${name} from ${file}`,
      shell: `${install} /tmp/${shellQuote(file)}${stripSuffix(flags.strip)}`,
      cache: [uvCache],
    });
  } else {
    const target =
      source.kind === 'url' ? shellQuote(source.url) : source.version ? `${name}==${source.version}` : name;
    steps.push({
      kind: 'run',
      name: `install ${source.kind === 'url' ? `${name} from ${source.url}` : target}`,
      shell: `${install} ${target}${stripSuffix(flags.strip)}`,
      cache: [uvCache],
    });
  }
  steps.push({ kind: 'env', name: 'reset CFLAGS', env: [['CFLAGS', '']] });
  return steps;
}

export function planBuild(input: PlanInput): BuildPlan {
  const cuda = input.baseKind === 'cuda';
  // tini, its ENTRYPOINT, the preamble ENVs and the ldconfig step come with a cog-base image
  const cogBase = input.baseKind === 'cog-base';
  const breakSystem = breaksSystemPackages(input) ? ' --break-system-packages' : '';
  const uvImage = input.uvImage ?? defaultUvImage;
  const aptLists = aptListsCache(input.baseImage);
  const steps: PlanStep[] = [];

  if (!cogBase) {
    steps.push({
      kind: 'env',
      name: 'preamble',
      env: [
        ['DEBIAN_FRONTEND', 'noninteractive'],
        ['PYTHONUNBUFFERED', '1'],
        [
          'LD_LIBRARY_PATH',
          '$LD_LIBRARY_PATH:/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:/usr/local/nvidia/bin',
        ],
        ['NVIDIA_DRIVER_CAPABILITIES', 'all'],
      ],
    });
  }

  if (input.caCert) {
    steps.push({
      kind: 'files',
      name: 'add the CA certificate',
      files: [{ path: caCertPath, content: input.caCert }],
    });
    steps.push({
      kind: 'run',
      name: 'trust the CA certificate',
      shell: `(update-ca-certificates >/dev/null 2>&1 || true) && cat ${caCertPath} >> ${systemBundle}`,
    });
    steps.push({
      kind: 'env',
      name: 'CA bundle',
      env: [
        ['SSL_CERT_FILE', systemBundle],
        ['REQUESTS_CA_BUNDLE', systemBundle],
      ],
    });
  }

  // the apt installs before Python, in upstream's order; when more than one is due they share one
  // step (one `apt-get update`, one layer) where the first after tini stands, instead of one each
  const aptInstalls: AptInstall[] = [];
  if (!cogBase) aptInstalls.push({ what: 'tini', packages: ['tini'], recommends: false, then: tiniLink });
  const systemPackages = systemPackagesToInstall(input);
  if (systemPackages.length > 0)
    aptInstalls.push({ what: 'system packages', packages: systemPackages, recommends: true });
  if (cuda) aptInstalls.push({ what: 'Python build tools', packages: pythonBuildTools, recommends: false });
  // tini alone keeps its own step, which can run beside the Python steps (runTiniBeside)
  const tiniAlone = aptInstalls.length === 1 && aptInstalls[0]?.what === 'tini';
  if (tiniAlone) steps.push(aptStep(aptInstalls, aptLists));

  if (input.environment.length > 0) {
    const sorted = [...input.environment].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    steps.push({ kind: 'env', name: 'cog.yaml environment', env: sorted });
  }

  if (aptInstalls.length > 0 && !tiniAlone) steps.push(aptStep(aptInstalls, aptLists));

  steps.push({
    kind: 'image-files',
    name: 'copy uv',
    image: uvImage,
    paths: ['/uv', '/uvx'],
    dest: '/usr/local/bin/',
  });
  steps.push({ kind: 'env', name: 'uv uses the system Python', env: [['UV_SYSTEM_PYTHON', 'true']] });
  if (cogBase && cogBaseHasUvPython(input.cuda)) {
    steps.push({
      kind: 'run',
      name: 'python on PATH',
      shell: 'ln -sf /usr/bin/python3 /usr/local/bin/python',
    });
  }
  if (cuda && input.cudaPython === 'distro') {
    steps.push({
      kind: 'run',
      name: `install Python ${input.pythonVersion} from the distribution`,
      shell:
        'apt-get update -qq && apt-get install -qqy --no-install-recommends python3 python3-pip python3-venv ' +
        `&& ${aptCleanup} && ln -sf /usr/bin/python3 /usr/local/bin/python`,
      cache: [aptCache, aptLists],
    });
  } else if (cuda) {
    const py = input.pythonVersion;
    steps.push({
      kind: 'run',
      name: `install Python ${py} with uv`,
      shell:
        `uv python install ${py} && ln -sf $(uv python find ${py}) /usr/bin/python3 && ` +
        `ln -sf $(uv python find ${py}) /usr/local/bin/python`,
      cache: [uvCache],
    });
    steps.push({
      kind: 'env',
      name: 'Python on PATH',
      env: [
        ['UV_PYTHON', py],
        ['PATH', '/usr/local/bin:$PATH'],
      ],
    });
  }

  const requirements = input.requirements?.trim();
  if (requirements) {
    const artifacts = input.localArtifacts ?? [];
    if (artifacts.length > 0) {
      steps.push({
        kind: 'context-files',
        name: 'copy local package artifacts',
        context: 'context',
        paths: artifacts,
        dest: '/tmp/local_package_artifacts/',
      });
    }
    steps.push({
      kind: 'files',
      name: 'requirements.txt',
      files: [{ path: '/tmp/requirements.txt', content: `${requirements}\n` }],
    });
    steps.push({ kind: 'env', name: 'optimise native builds', env: [['CFLAGS', optimisingCflags]] });
    // relative artifact paths in requirements.txt resolve against the copied project layout
    const cd = artifacts.length > 0 ? 'cd /tmp/local_package_artifacts && ' : '';
    steps.push({
      kind: 'run',
      name: 'install requirements',
      shell: `${cd}uv run pip install${breakSystem} --cache-dir /root/.cache/pip -r /tmp/requirements.txt${stripSuffix(input.strip)}`,
      cache: [pipCache, uvCache],
    });
    steps.push({ kind: 'env', name: 'reset CFLAGS', env: [['CFLAGS', '']] });
    if (artifacts.length > 0) {
      steps.push({
        kind: 'run',
        name: 'keep the managed cog and coglet',
        shell: `uv pip uninstall${breakSystem} cog coglet`,
        cache: [uvCache],
      });
    }
  }

  const pre =
    (input.sdk.kind === 'pypi' && input.sdk.pre === true) ||
    (input.coglet?.kind === 'pypi' && input.coglet.pre === true);
  const flags = { breakSystem, pre, strip: input.strip };
  if (input.coglet) steps.push(...wheelInstall('coglet', input.coglet, flags));
  steps.push(...wheelInstall('cog', input.sdk, flags));
  // the installs end here unless a user command follows (it may pip install too)
  let packagesSettled = steps.findLastIndex((s) => s.kind === 'run');

  if (input.precompile) {
    steps.push({
      kind: 'run',
      name: 'precompile Python',
      shell:
        'find / -type f -name "*.py[co]" -delete 2>/dev/null; ' +
        'find / -type f -name "*.py" -exec touch -t 197001010000 {} + 2>/dev/null; ' +
        'find / -type f -name "*.py" -printf "%h\\n" 2>/dev/null | sort -u | ' +
        'xargs /usr/bin/python3 -m compileall --invalidation-mode timestamp -o 2 -j 0 -q || true',
    });
  }

  if (!cogBase) {
    steps.push({
      kind: 'run',
      name: 'register Python shared libraries',
      shell:
        'find / -type f -name "*python*.so" -printf "%h\\n" | sort -u > /etc/ld.so.conf.d/cog.conf && ldconfig ' +
        '&& rm -f /var/cache/ldconfig/aux-cache',
    });
  }

  const firstUserStep = steps.length;
  for (const [index, run] of input.runCommands.entries()) {
    const secretsKey = stepSecretsKey(run.secrets, input.secretKeys);
    steps.push({
      kind: 'run',
      name: `build.run[${index}]: ${run.command.trim()}`,
      shell: run.command.trim(),
      ...(run.secrets.length > 0 ? { secrets: run.secrets } : {}),
      ...(secretsKey ? { secretsKey } : {}),
    });
  }

  if (input.runCommands.length > 0) packagesSettled = steps.length - 1;
  const settled = steps[packagesSettled];
  if (settled?.kind === 'run') steps[packagesSettled] = { ...settled, packagesSettled: true };
  runTiniBeside(steps, firstUserStep);

  const stubs: [string, string][] = [];
  if (input.predict) stubs.push(['COG_PREDICT_TYPE_STUB', input.predict]);
  if (input.train) stubs.push(['COG_TRAIN_TYPE_STUB', input.train]);
  if (input.concurrencyMax !== undefined && input.concurrencyMax > 0)
    stubs.push(['COG_MAX_CONCURRENCY', String(input.concurrencyMax)]);
  if (stubs.length > 0) steps.push({ kind: 'env', name: 'predictor', env: stubs });

  const afterSource: PlanStep[] = [];
  if (input.configFileName && input.configFileName !== 'cog.yaml') {
    afterSource.push({
      kind: 'run',
      name: `use ${input.configFileName} as cog.yaml`,
      shell: `cp /src/${shellQuote(input.configFileName)} /src/cog.yaml`,
    });
  }

  const ignored = ['.cog', ...input.sourceExclude];
  const found = input.weights;
  const weights = found && found.dirs.length + found.files.length > 0 ? found : undefined;

  return {
    platform: input.platform ?? { os: 'linux', architecture: 'amd64' },
    base: input.baseImage,
    steps,
    // where upstream's `COPY --from=weights --link` sits: after the run commands, before the source
    ...(weights ? { weights: { dirs: weights.dirs, files: weights.files, exclude: ignored } } : {}),
    source: {
      // the weights' patterns last, so no .dockerignore exception brings them back
      exclude: weights ? [...ignored, ...weightExcludes(weights)] : ignored,
      files: input.openapiSchema
        ? [{ path: '/src/.cog/openapi_schema.json', content: input.openapiSchema }]
        : [],
    },
    afterSource,
    stepEnv: input.sourceDateEpoch !== undefined ? { SOURCE_DATE_EPOCH: String(input.sourceDateEpoch) } : {},
    freezeCommand,
    image: {
      entrypoint: ['/sbin/tini', '--'],
      cmd: ['python', '-m', 'cog.server.http'],
      workdir: '/src',
      exposedPorts: ['5000/tcp'],
      labels: { ...input.labels },
    },
  };
}
