// The CUDA / torch / TensorFlow compatibility matrices and the questions completion asks of them.
// Pure: the data comes in as parsed JSON (see compat-load.ts for where it is read from).
import * as v from 'valibot';
import { CogError } from '../errors.js';
import {
  compareLooseVersions,
  majorMinor,
  parseLooseVersion,
  stripModifier,
  versionMatches,
} from './version.js';

const CudaImageSchema = v.object({
  Tag: v.string(),
  CUDA: v.pipe(v.string(), v.regex(/^\d+\.\d+(\.\d+)?$/, 'must be a version like "12.8.1"')),
  CuDNN: v.pipe(v.string(), v.regex(/^\d+$/, 'must be a major version like "9"')),
  IsDevel: v.boolean(),
  Ubuntu: v.string(),
});

const TorchSchema = v.object({
  Torch: v.string(),
  Torchvision: v.string(),
  Torchaudio: v.string(),
  FindLinks: v.string(),
  ExtraIndexURL: v.string(),
  CUDA: v.nullable(v.pipe(v.string(), v.regex(/^\d+\.\d+$/, 'must be "major.minor" or null'))),
  Pythons: v.array(v.string()),
});

const TfSchema = v.object({
  TF: v.string(),
  TFCPUPackage: v.string(),
  TFGPUPackage: v.string(),
  CUDA: v.pipe(v.string(), v.regex(/^\d+(\.\d+)*$/, 'must be a version')),
  CuDNN: v.pipe(v.string(), v.regex(/^\d+(\.\d+)*$/, 'must be a version')),
  Pythons: v.array(v.string()),
});

export type CudaBaseImage = v.InferOutput<typeof CudaImageSchema>;
export type TorchCompat = v.InferOutput<typeof TorchSchema>;
/** CUDA cut to major.minor and CuDNN to its major, as the nvidia images are named */
export type TfCompat = v.InferOutput<typeof TfSchema>;

export interface CompatData {
  cudaImages: CudaBaseImage[];
  /** rows whose CUDA is null (CPU) or offered by some CUDA base image */
  torch: TorchCompat[];
  tf: TfCompat[];
}

export const COMPAT_FILES = {
  cuda: 'cuda_compatibility.json',
  torch: 'torch_compatibility.json',
  tf: 'tf_compatibility.json',
} as const;

export class CompatDataError extends CogError {}

function parseFile<S extends v.GenericSchema>(schema: S, data: unknown, file: string): v.InferOutput<S>[] {
  const result = v.safeParse(v.array(schema, 'must be a JSON array'), data);
  if (!result.success) {
    const first = result.issues[0];
    const where = (first?.path ?? []).map((p: { key: unknown }) => String(p.key)).join('.');
    throw new CompatDataError(
      `invalid compatibility data in ${file}: ${where === '' ? '' : `${where}: `}${first?.message ?? 'invalid'}`,
      {
        hint: 'the file must keep the format of the bundled compat/*.json; fix it or unset COG_COMPAT_DIR',
      },
    );
  }
  if (result.output.length === 0) {
    throw new CompatDataError(`invalid compatibility data in ${file}: the list is empty`, {
      hint: 'the file must keep the format of the bundled compat/*.json; fix it or unset COG_COMPAT_DIR',
    });
  }
  return result.output;
}

/** Validate and normalise the three decoded JSON files; errors name the file they came from. */
export function parseCompatData(files: {
  cuda: { file: string; data: unknown };
  torch: { file: string; data: unknown };
  tf: { file: string; data: unknown };
}): CompatData {
  const cudaImages = parseFile(CudaImageSchema, files.cuda.data, files.cuda.file);
  const torchRows = parseFile(TorchSchema, files.torch.data, files.torch.file);
  const tfRows = parseFile(TfSchema, files.tf.data, files.tf.file);
  const torch = torchRows.filter(
    (row) => row.CUDA === null || cudaImages.some((img) => versionMatches(row.CUDA ?? '', img.CUDA)),
  );
  const tf = tfRows.map((row) => ({
    ...row,
    CUDA: majorMinor(row.CUDA) ?? row.CUDA,
    CuDNN: String(parseLooseVersion(row.CuDNN)?.major ?? row.CuDNN),
  }));
  return { cudaImages, torch, tf };
}

// ---------------------------------------------------------------------------------------------

/** cuDNN majors offered together with `cuda`, ascending. */
export function compatibleCuDNNs(compat: CompatData, cuda: string): string[] {
  const set = new Set(
    compat.cudaImages.filter((img) => versionMatches(cuda, img.CUDA)).map((img) => img.CuDNN),
  );
  return [...set].sort((a, b) => compareLooseVersions(a, b));
}

/** The newest cuDNN offered with `cuda`, or undefined when no base image has that CUDA. */
export function latestCuDNNForCUDA(compat: CompatData, cuda: string): string | undefined {
  return compatibleCuDNNs(compat, cuda).at(-1);
}

/** "2.3.1+cu118" → "11.8"; undefined without a +cuXYZ suffix. */
export function cudaFromTorchSuffix(version: string): string | undefined {
  const plus = version.lastIndexOf('+');
  if (plus < 0) return undefined;
  const m = /^cu(\d+)(\d)$/.exec(version.slice(plus + 1));
  return m === null ? undefined : `${m[1]}.${m[2]}`;
}

/**
 * CUDA versions torch `version` is published for, sorted as strings. A +cuXYZ suffix narrows the
 * answer to that CUDA when the matrix has such a row. "2.3" matches every 2.3.x.
 */
export function cudasFromTorch(compat: CompatData, version: string): string[] {
  const suffixCuda = cudaFromTorchSuffix(version);
  const base = stripModifier(version);
  if (suffixCuda !== undefined) {
    const row = compat.torch.find(
      (r) => r.CUDA === suffixCuda && versionMatches(base, stripModifier(r.Torch)),
    );
    if (row !== undefined) return [suffixCuda];
  }
  return compat.torch
    .filter((r) => r.CUDA !== null && versionMatches(base, stripModifier(r.Torch)))
    .map((r) => r.CUDA ?? '')
    .sort();
}

/** The numerically greatest of a list of CUDA versions. */
export function latestCUDAFrom(cudas: readonly string[]): string | undefined {
  return [...cudas].sort(compareLooseVersions).at(-1);
}

/** TensorFlow's CUDA (major.minor) and cuDNN (major), by exact version match. */
export function tfCompatFor(compat: CompatData, version: string): TfCompat | undefined {
  return compat.tf.find((row) => row.TF === version);
}

/**
 * The nvidia/cuda image for a CUDA / cuDNN pair: the newest CUDA patch that matches, then the newest
 * Ubuntu. Undefined when there is none.
 */
export function cudaBaseImageFor(compat: CompatData, cuda: string, cudnn: string): string | undefined {
  const candidates = compat.cudaImages
    .filter((img) => versionMatches(cuda, img.CUDA) && img.CuDNN === cudnn)
    .sort(
      (a, b) =>
        compareLooseVersions(b.CUDA, a.CUDA) || (a.Ubuntu < b.Ubuntu ? 1 : a.Ubuntu > b.Ubuntu ? -1 : 0),
    );
  const best = candidates[0];
  return best === undefined ? undefined : `nvidia/cuda:${best.Tag}`;
}

/**
 * For a GPU build: the row with torch (or torchvision) `version` whose CUDA is the highest not above
 * `cuda`; ties go to the higher torch version.
 */
export function torchRowForGPU(
  compat: CompatData,
  pkg: 'torch' | 'torchvision',
  version: string,
  cuda: string,
): TorchCompat | undefined {
  let best: TorchCompat | undefined;
  for (const row of compat.torch) {
    if (row.CUDA === null) continue;
    const rowVersion = stripModifier(pkg === 'torch' ? row.Torch : row.Torchvision);
    const ok = pkg === 'torch' ? versionMatches(rowVersion, version) : rowVersion === stripModifier(version);
    if (!ok || compareLooseVersions(row.CUDA, cuda) > 0) continue;
    if (best === undefined) {
      best = row;
      continue;
    }
    const byCuda = compareLooseVersions(row.CUDA, best.CUDA ?? '');
    const bestVersion = stripModifier(pkg === 'torch' ? best.Torch : best.Torchvision);
    if (byCuda > 0 || (byCuda === 0 && compareLooseVersions(rowVersion, bestVersion) > 0)) best = row;
  }
  return best;
}

/** For a CPU build: the CPU row with exactly torch (or torchvision) `version`. */
export function torchRowForCPU(
  compat: CompatData,
  pkg: 'torch' | 'torchvision',
  version: string,
): TorchCompat | undefined {
  return compat.torch.find(
    (row) => row.CUDA === null && stripModifier(pkg === 'torch' ? row.Torch : row.Torchvision) === version,
  );
}

// ---------------------------------------------------------------------------------------------
// cog-base images

/** The newest torch version in the matrix that matches `version` ("2.3" → "2.3.1"). */
export function normaliseTorchVersion(compat: CompatData, version: string): string | undefined {
  const base = stripModifier(version);
  const versions = compat.torch.map((r) => stripModifier(r.Torch)).filter((t) => versionMatches(base, t));
  return versions.sort(compareLooseVersions).at(-1);
}

export function cogBaseTag(parts: {
  cuda?: string | null;
  python?: string | null;
  torch?: string | null;
}): string {
  const out: string[] = [];
  if (parts.cuda) out.push(`cuda${majorMinor(parts.cuda) ?? parts.cuda}`);
  if (parts.python) out.push(`python${majorMinor(parts.python) ?? parts.python}`);
  if (parts.torch) out.push(`torch${stripModifier(parts.torch)}`);
  return out.length === 0 ? 'latest' : out.join('-');
}

/**
 * Every cog-base tag that is built, derived from the torch matrix: rows with Python ≥ 3.10 and torch
 * ≥ 1.13.1 (CPU rows, and CUDA rows with CUDA ≥ 11.6), plus every cuda+python and python-only pair.
 */
export function cogBaseTags(compat: CompatData): Set<string> {
  const tags = new Set<string>();
  const cudas = new Set<string>();
  const pythons = new Set<string>();
  for (const row of compat.torch) {
    const torch = stripModifier(row.Torch);
    if (compareLooseVersions(torch, '1.13.1') < 0) continue;
    if (row.CUDA !== null && compareLooseVersions(row.CUDA, '11.6') < 0) continue;
    for (const py of row.Pythons) {
      if (compareLooseVersions(py, '3.10') < 0) continue;
      pythons.add(py);
      if (row.CUDA !== null) cudas.add(row.CUDA);
      tags.add(cogBaseTag({ cuda: row.CUDA, python: py, torch }));
    }
  }
  for (const py of pythons) {
    tags.add(cogBaseTag({ python: py }));
    for (const cuda of cudas) tags.add(cogBaseTag({ cuda, python: py }));
  }
  return tags;
}
