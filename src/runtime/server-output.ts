/**
 * The model server's last lines of output, for the error of a model that did not become ready: the
 * probe (smoke.ts) keeps them in its report, since the default (quiet) progress view shows none of the
 * server's output. coglet logs JSON lines; they are shown as a person reads them. Pure.
 */
import { CogError } from '../errors.js';
import type { SmokeReport } from './smoke.js';
import { isRecord } from '../is-record.js';

/**
 * One line of the server's output as a person reads it: a coglet JSON log entry becomes
 * `LEVEL message key=value…` (the model's own stdout/stderr, which coglet logs with a `source`, just
 * its text); any other line stays as it is.
 */
export function readableServerLine(line: string): string {
  if (!line.startsWith('{')) return line;
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (!isRecord(entry) || !isRecord(entry.fields) || typeof entry.fields.message !== 'string') return line;
  const { message, source, ...rest } = entry.fields;
  if (source !== undefined) return message;
  const extra = Object.entries(rest).map(
    ([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`,
  );
  return [typeof entry.level === 'string' ? entry.level : '', message, ...extra].filter((p) => p).join(' ');
}

/** The report's tail of the server's output as a person reads it, without blank lines around it. */
function readableTail(report: SmokeReport): string[] {
  // a log entry's message may hold line breaks (an exception's text): each line is one of the tail's
  const lines = (report.output_tail ?? []).flatMap((line) => readableServerLine(line).split(/\r?\n/));
  while (lines.length > 0 && (lines[0] ?? '').trim() === '') lines.shift();
  while (lines.length > 0 && (lines[lines.length - 1] ?? '').trim() === '') lines.pop();
  return lines;
}

/**
 * The report's tail of the server's output (kept when it did not become READY or the prediction
 * failed), indented under a heading, to end an error message; empty when there is none.
 */
export function serverOutputTail(report: SmokeReport): string {
  const lines = readableTail(report);
  if (lines.length === 0) return '';
  const count = lines.length === 1 ? 'line' : `${lines.length} lines`;
  return `\nthe model server's last ${count} of output:\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

/** The hint of an error about a server that did not become READY: the build's log has all its output. */
export const wholeOutputHint = "run again with --progress plain to see all of the model server's output";

/** The same hint when the progress view printed the build's log (--progress plain or rawjson). */
export const shownOutputHint = "the model server's whole output is in the build's log above";

/**
 * An error whose hint says to run again with --progress plain, when the log was printed already
 * (`logShown`): the hint points to the log instead. Any other error is returned as it is.
 */
export function pointToShownOutput(err: unknown, logShown: boolean): unknown {
  if (!logShown || !(err instanceof CogError) || err.hint !== wholeOutputHint) return err;
  return new CogError(err.message, { hint: shownOutputHint, exitCode: err.exitCode, cause: err.cause });
}

/**
 * Whether the tail's lines hold the setup logs already: every non-blank line of the logs is within one
 * of them (compared line by line, before the tail is indented under its heading).
 */
function tailHolds(tail: readonly string[], logs: string): boolean {
  return logs
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .every((l) => tail.some((t) => t.includes(l)));
}

/**
 * What follows the first line of an error about a server that did not become READY: its setup logs
 * (unless the output tail holds them already) and the tail of its output; empty when it has neither.
 */
export function notReadyDetail(report: SmokeReport): string {
  const tail = serverOutputTail(report);
  const logs = report.health?.setup?.logs?.trim();
  if (!logs || tailHolds(readableTail(report), logs)) return tail;
  const indented = logs
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
  return `\nsetup logs:\n${indented}${tail}`;
}
