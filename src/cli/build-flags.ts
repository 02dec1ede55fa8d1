/**
 * Build flags that need more than yargs gives: --platform (one platform, or several for an image index)
 * and hidden --dockerfile (the file, and the flags it cannot go with).
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { CogError } from '../errors.js';
import { readPlatformSpec } from './platform-spec.js';
import type { BuildArgs } from './prepare-build.js';

export type Platform = { os: 'linux'; architecture: 'amd64' | 'arm64' };

/**
 * --platform: linux/amd64 (default), linux/arm64, or both comma-separated (a multi-platform image, as
 * buildx takes it); repeats count once, the order given is the index's. Each is read as buildx reads
 * it (platform-spec.ts): `arm64`, `linux/aarch64` and `linux/arm64/v8` are linux/arm64.
 */
export function parsePlatforms(value: string | undefined): Platform[] {
  if (value === undefined) return [{ os: 'linux', architecture: 'amd64' }];
  const platforms: Platform[] = [];
  for (const part of value.split(',').map((p) => p.trim())) {
    const read = readPlatformSpec(part);
    const platform: Platform | undefined =
      read?.os === 'linux' &&
      !read.variant &&
      (read.architecture === 'amd64' || read.architecture === 'arm64')
        ? { os: 'linux', architecture: read.architecture }
        : undefined;
    if (!platform)
      throw new CogError(
        `--platform ${value}: ${part === '' ? 'an empty platform' : `${part} is not supported`}`,
        {
          hint: 'use linux/amd64, linux/arm64, or linux/amd64,linux/arm64 for both',
        },
      );
    if (!platforms.some((p) => p.architecture === platform.architecture)) platforms.push(platform);
  }
  return platforms;
}

/** --platform where a command builds for one platform only. */
export function parsePlatform(value: string | undefined, command = 'this command'): Platform {
  const [first, ...more] = parsePlatforms(value);
  if (!first || more.length > 0)
    throw new CogError(`--platform ${value}: ${command} builds for one platform`, {
      hint: 'give one: linux/amd64 or linux/arm64',
    });
  return first;
}

/**
 * Checks hidden --dockerfile against the flags that only shape the build cog.yaml describes, and finds
 * the file.
 */
export async function findDockerfile(
  args: Pick<
    BuildArgs,
    'dockerfile' | 'useCogBaseImage' | 'useCudaBaseImage' | 'precompile' | 'strip' | 'separateWeights'
  >,
  cwd: string,
): Promise<{ path: string; dir: string; filename: string }> {
  const given = args.dockerfile ?? '';
  if (args.useCogBaseImage !== undefined || args.useCudaBaseImage !== undefined) {
    const other = args.useCogBaseImage !== undefined ? '--use-cog-base-image' : '--use-cuda-base-image';
    throw new CogError(`the flags ${other} and --dockerfile are mutually exclusive`, {
      hint: 'a Dockerfile names its own base image: drop one of them',
    });
  }
  const generatedOnly = (
    [
      ['--precompile', args.precompile],
      ['--strip', args.strip],
      ['--separate-weights', args.separateWeights],
    ] as const
  ).filter(([, on]) => on === true);
  if (generatedOnly.length > 0) {
    const flags = generatedOnly.map(([flag]) => flag).join(', ');
    throw new CogError(`${flags}: not with --dockerfile (only the build cog.yaml describes has it)`, {
      hint: 'do the same in your Dockerfile, or build without --dockerfile',
    });
  }
  if (given === '')
    throw new CogError('--dockerfile needs the path of a Dockerfile', {
      hint: 'e.g. --dockerfile Dockerfile',
    });
  const path = resolve(cwd, given);
  let isFile = false;
  try {
    isFile = (await stat(path)).isFile();
  } catch (err) {
    throw new CogError(
      `--dockerfile ${given}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      {
        hint: 'give the path of a Dockerfile (relative to the current directory)',
      },
    );
  }
  if (!isFile)
    throw new CogError(`--dockerfile ${given}: not a file`, {
      hint: 'give the path of a Dockerfile, not a directory',
    });
  return { path, dir: dirname(path), filename: basename(path) };
}
