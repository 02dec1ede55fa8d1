/** `cog init`: starter files for a new model, never overwriting what exists. */
import { writeInitFiles } from '../config/init.js';

export function init(dir: string, out: NodeJS.WritableStream): void {
  const result = writeInitFiles(dir);
  for (const path of result.written) out.write(`Wrote ${path}\n`);
  for (const path of result.skipped) out.write(`Skipped ${path}: it already exists\n`);
}
