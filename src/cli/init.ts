/** `cog init`: starter files for a new model, never overwriting what exists. */
import { writeInitFiles } from '../config/init.js';
import { CogError } from '../errors.js';

/** @throws CogError when a name is held by something that is no file (nothing is written there) */
export function init(dir: string, out: NodeJS.WritableStream): void {
  const result = writeInitFiles(dir);
  for (const path of result.written) out.write(`Wrote ${path}\n`);
  for (const path of result.skipped) out.write(`Skipped ${path}: it already exists\n`);
  if (result.blocked.length)
    throw new CogError(
      result.blocked.map(({ path, what }) => `${path} is ${what}, so cog init wrote no ${path}`).join('; '),
      { hint: `move ${result.blocked.map((b) => b.path).join(' and ')} aside and run cog init again` },
    );
}
