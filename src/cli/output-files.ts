/**
 * The files a build writes on the client (`--output type=oci|docker|tar,dest=FILE`, `--metadata-file`),
 * checked before the build: a path that names a directory, or whose directory does not exist or cannot
 * be written in, would otherwise fail only once the (possibly long) build is done.
 */
import { stat } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { writeTarget } from '../write-target.js';
import { CogError } from '../errors.js';
import { directoryProblem } from '../writable-dir.js';

/** What a check says about a file a build is to write. */
export interface OutputFile {
  /** the flag as given, for the message, e.g. `--output "type=oci,dest=x.tar"` */
  readonly flag: string;
  /** the path as given */
  readonly path: string;
  /** the flag with `file` in place of the path, for the hint */
  readonly example: (file: string) => string;
  /** a file name to suggest inside a directory, e.g. image.tar */
  readonly suggestedName: string;
}

const endsWithSeparator = (path: string) => path.endsWith('/') || path.endsWith(sep);

async function statOf(path: string) {
  return stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
}

/** Rejects unless `file.path` (relative to `cwd`) can be created or replaced as a file. */
export async function checkOutputFile(file: OutputFile, cwd: string): Promise<void> {
  const target = resolve(cwd, file.path);
  const existing = await statOf(target);
  if (existing?.isDirectory() || endsWithSeparator(file.path)) {
    throw new CogError(`${file.flag}: ${file.path} is a directory, not a file to write`, {
      hint: `name a file, e.g. ${file.example(join(file.path, file.suggestedName))}`,
    });
  }
  // the file is written next to where a link at `target` points (filesend.ts), so that directory counts
  const dir = dirname(await writeTarget(target).catch(() => target));
  const problem = await directoryProblem(dir);
  if (problem?.kind === 'missing')
    throw new CogError(`${file.flag}: the directory ${dir} does not exist`, {
      hint: `create it first (mkdir -p ${dir}), or write the file into a directory that exists`,
    });
  if (problem?.kind === 'file')
    throw new CogError(`${file.flag}: ${problem.path} is a file, not a directory`, {
      hint: `choose another path, in a directory that exists, e.g. ${file.example(file.suggestedName)}`,
    });
  if (problem?.kind === 'unwritable')
    throw new CogError(`${file.flag}: cannot write files in ${dir} (${problem.code})`, {
      hint: `choose another path, in a directory you can write to, e.g. ${file.example(file.suggestedName)}`,
    });
}

/** The file `path` (relative to `cwd`; `-` is stdout, for an --output) lands in, links followed, to compare two. */
async function landingPlace(path: string, cwd: string): Promise<string> {
  if (path === '-') return '-';
  return writeTarget(resolve(cwd, path));
}

/**
 * Rejects two flags that write the same file (or both stdout): the one written last would silently
 * replace the other's. `files` are the flags as given, with their paths.
 */
export async function refuseSharedOutputFiles(
  files: readonly { readonly flag: string; readonly path: string }[],
  cwd: string,
): Promise<void> {
  const seen = new Map<string, string>();
  for (const file of files) {
    const place = await landingPlace(file.path, cwd);
    const first = seen.get(place);
    if (first !== undefined)
      throw new CogError(
        `${first} and ${file.flag} both write ${place === '-' ? 'to stdout' : place}: one would overwrite the other`,
        { hint: 'give each output a file of its own' },
      );
    seen.set(place, file.flag);
  }
}

/**
 * `cog build -o PATH`: to buildx a bare path is a directory to export the image's files into, which
 * cog build does not make (it writes the image as a tarball); refused, naming the tarball flag to use.
 */
export function refuseBareOutput(value: string): void {
  if (value.includes('=')) return;
  const file =
    value === '-' || (value.endsWith('/') === false && extname(value) !== '')
      ? value
      : join(value, 'image.tar');
  throw new CogError(`--output "${value}": cog build writes the image as a tarball, not into a directory`, {
    hint: `name the tarball: --output type=oci,dest=${file} (or type=docker for \`docker load\`)`,
  });
}
