// A node:test reporter that repeats every failed test at the very end of the run, with its file and error.
// The TAP stream says `not ok` where a test fails, which is thousands of lines above the end of a CI log;
// a log cut to its tail (as CI pages show it) then hides which test failed. scripts/test adds this
// reporter next to TAP, so the tail names each failure.
import { relative } from 'node:path';
import process from 'node:process';

/** @param {AsyncIterable<{ type: string, data: any }>} source */
export default async function* failuresReporter(source) {
  const failures = [];
  for await (const event of source) {
    if (event.type !== 'test:fail') continue;
    const error = event.data.details?.error;
    // a suite fails when one of its tests fails; the test itself is listed
    if (error?.failureType === 'subtestsFailed') continue;
    failures.push({ name: event.data.name, file: event.data.file, error });
  }
  if (failures.length === 0) return;
  yield `\n# ${failures.length} failed test${failures.length === 1 ? '' : 's'}:\n`;
  for (const { name, file, error } of failures) {
    yield `# not ok: ${name}${file ? ` (${relative(process.cwd(), file)})` : ''}\n`;
    const cause = error?.cause ?? error;
    const text = cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
    const lines = text.split('\n').filter((line) => !/^\s+at .*\(?node:/.test(line));
    for (const line of lines.slice(0, 30)) yield `#   ${line}\n`;
  }
}
