// The requirements.txt that goes into the image: cog/coglet lines removed (the SDK is installed on its
// own), torch/torchvision pinned to the wheel built for the image's CUDA (or CPU) with the index it
// lives on, tensorflow to its GPU package.
import { torchRowForCPU, torchRowForGPU, tfCompatFor } from './compat.js';
import type { CompatData } from './compat.js';
import type { FieldPath, PathIssue } from './issues.js';
import { classifyRequirement, normalisedName } from './requirements.js';
import type { RequirementLine } from './requirements.js';
import { stripModifier } from './version.js';

const SDK_PACKAGES: Readonly<Record<string, string>> = {
  cog: 'the cog SDK is installed separately (choose its version with build.sdk_version or COG_SDK_WHEEL)',
  coglet: 'coglet is installed with the cog SDK (choose its version with COGLET_WHEEL)',
};

/** Remove cog and coglet from the user's requirements, with one warning per removed line. */
export function removeSdkRequirements(
  lines: readonly RequirementLine[],
  where: { file: string | null; path: FieldPath },
): { kept: RequirementLine[]; warnings: PathIssue[] } {
  const kept: RequirementLine[] = [];
  const warnings: PathIssue[] = [];
  for (const line of lines) {
    const reason =
      classifyRequirement(line.text).kind === 'other' ? SDK_PACKAGES[normalisedName(line.text)] : undefined;
    if (reason === undefined) {
      kept.push(line);
      continue;
    }
    const warning: PathIssue = {
      path: where.path,
      message: `ignoring requirement "${line.text}": ${reason}`,
    };
    if (where.file !== null && line.line > 0) warning.location = { file: where.file, line: line.line };
    warnings.push(warning);
  }
  return { kept, warnings };
}

interface Pinned {
  name: string;
  version: string;
  findLinks: string[];
  extraIndexURLs: string[];
}

/** "name==version [--find-links X | -f X | --extra-index-url X]..." or undefined for anything else. */
export function parsePinned(text: string): Pinned | undefined {
  const tokens = text.trim().split(/\s+/);
  const first = /^([A-Za-z0-9_-]+)==(\S+)$/.exec(tokens[0] ?? '');
  if (first === null) return undefined;
  const out: Pinned = { name: first[1] ?? '', version: first[2] ?? '', findLinks: [], extraIndexURLs: [] };
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i] ?? '';
    const eq = /^(--find-links|--extra-index-url)=(.+)$/.exec(t);
    if (eq !== null) {
      (eq[1] === '--find-links' ? out.findLinks : out.extraIndexURLs).push(eq[2] ?? '');
      continue;
    }
    if ((t === '-f' || t === '--find-links' || t === '--extra-index-url') && i + 1 < tokens.length) {
      (t === '--extra-index-url' ? out.extraIndexURLs : out.findLinks).push(tokens[++i] ?? '');
      continue;
    }
    return undefined;
  }
  return out;
}

export interface RewriteOptions {
  gpu: boolean;
  /** the build's CUDA (major.minor); required when gpu */
  cuda: string | null;
  compat: CompatData;
}

/**
 * Rewrite requirement lines for linux/amd64. Returns the requirements.txt text ("--find-links" lines,
 * then "--extra-index-url" lines, then the packages in their original order) and warnings.
 */
export function rewriteRequirements(
  lines: readonly RequirementLine[],
  opts: RewriteOptions,
): { text: string; warnings: string[] } {
  const packages: string[] = [];
  const findLinks = new Set<string>();
  const extraIndexURLs = new Set<string>();
  const warnings: string[] = [];
  for (const line of lines) {
    const pinned = parsePinned(line.text);
    if (pinned === undefined) {
      packages.push(line.text);
      continue;
    }
    pinned.findLinks.forEach((f) => findLinks.add(f));
    pinned.extraIndexURLs.forEach((u) => extraIndexURLs.add(u));
    if (pinned.extraIndexURLs.length > 0) {
      packages.push(`${pinned.name}==${pinned.version}`);
      continue;
    }
    let version = pinned.version;
    if (pinned.name === 'tensorflow' && opts.gpu) {
      const row = tfCompatFor(opts.compat, version);
      const gpuVersion =
        row !== undefined && row.CUDA === opts.cuda ? /==(\S+)$/.exec(row.TFGPUPackage)?.[1] : undefined;
      if (gpuVersion !== undefined) version = gpuVersion;
    } else if (pinned.name === 'torch' || pinned.name === 'torchvision') {
      const row =
        opts.gpu && opts.cuda !== null
          ? torchRowForGPU(opts.compat, pinned.name, version, opts.cuda)
          : torchRowForCPU(opts.compat, pinned.name, version);
      if (row !== undefined) {
        const rowVersion = pinned.name === 'torch' ? row.Torch : row.Torchvision;
        // GPU wheels are named without their +cuXYZ local part; the CPU wheels keep +cpu.
        version = opts.gpu ? stripModifier(rowVersion) : rowVersion;
        if (row.ExtraIndexURL !== '') extraIndexURLs.add(row.ExtraIndexURL);
        if (row.FindLinks !== '') findLinks.add(row.FindLinks);
      } else if (opts.gpu && pinned.name === 'torchvision') {
        warnings.push(
          `Cog doesn't know if CUDA ${opts.cuda ?? '?'} is compatible with torchvision ${version}. This might cause CUDA problems.`,
        );
      }
    }
    packages.push(`${pinned.name}==${version}`);
  }
  const out = [
    ...[...findLinks].map((f) => `--find-links ${f}`),
    ...[...extraIndexURLs].map((u) => `--extra-index-url ${u}`),
    ...packages,
  ];
  return { text: out.join('\n'), warnings };
}
