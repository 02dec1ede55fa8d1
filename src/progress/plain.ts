/**
 * Plain progress: stable, append-only lines for CI logs, in the shape BuildKit's `plain` mode uses.
 *
 *     #3 [2/3] RUN pip install -r requirements.txt
 *     #3 0.412 Collecting numpy
 *     #3 DONE 12.3s
 *
 *     #4 exporting to image
 *     #4 pushing layer sha256:ab12… 10.24MB / 20.00MB 0.5s
 *     #4 pushing layer sha256:ab12… 20.00MB / 20.00MB 1.0s done
 *
 * Steps are numbered in the order they start. A block starts with `#N name`; when output of another
 * step interleaves, the unfinished block is closed with `#N ...` and reopened with its header later
 * (a step that starts while another's block is open is announced with its first output).
 * Log lines carry the seconds since the step started. A status (e.g. a layer push) is printed when
 * it finishes, and in between only after 5% more progress or 5 seconds. The summary written at the
 * end repeats the last log lines of each failed step.
 */
import {
  isCanceled,
  type ProgressEvent,
  type ProgressModel,
  type StatusRecord,
  type VertexRecord,
} from './model.js';
import { type ProgressOutput, type ProgressRenderer, writeText } from './output.js';
import { formatBytes, formatLogOffset, formatSeconds } from './time.js';

const minProgressFraction = 0.05;
const minStatusIntervalMs = 5000;

interface PrintedStatus {
  readonly current: number;
  readonly timestampMs: number;
  readonly completed: boolean;
}

export class PlainPrinter {
  /** the step whose block is open */
  private current: VertexRecord | undefined;
  private printedAny = false;
  private readonly lastPrinted = new Map<string, PrintedStatus>();

  /** The text (whole lines, each ending in a newline) for a batch of model events. */
  format(events: readonly ProgressEvent[]): string {
    const lines: string[] = [];
    for (const event of events) this.formatEvent(event, lines);
    return lines.map((line) => `${line}\n`).join('');
  }

  private formatEvent(event: ProgressEvent, lines: string[]): void {
    const { vertex } = event;
    const prefix = `#${vertex.index}`;
    switch (event.kind) {
      case 'started':
        // a step starting while another's block is open gets its header with its first output
        if (this.current === undefined || this.current.completedMs !== undefined) this.open(vertex, lines);
        return;
      case 'log':
        this.open(vertex, lines);
        lines.push(`${prefix} ${formatLogOffset(event.line.offsetMs)} ${event.line.text}`);
        return;
      case 'status':
        if (!this.shouldPrint(vertex, event.status)) return;
        this.open(vertex, lines);
        lines.push(`${prefix} ${formatStatus(event.status)}`);
        return;
      case 'warning':
        this.open(vertex, lines);
        lines.push(`${prefix} WARN: ${event.message}`);
        return;
      case 'completed':
        this.open(vertex, lines);
        lines.push(`${prefix} ${formatOutcome(vertex)}`);
        this.current = undefined;
        return;
    }
  }

  /** Makes `vertex` the open block, closing the previous one and printing a header if it changed. */
  private open(vertex: VertexRecord, lines: string[]): void {
    if (this.current === vertex) return;
    if (this.current !== undefined && this.current.completedMs === undefined) {
      lines.push(`#${this.current.index} ...`);
    }
    if (this.printedAny) lines.push('');
    this.printedAny = true;
    lines.push(`#${vertex.index} ${vertex.name}`);
    this.current = vertex;
  }

  private shouldPrint(vertex: VertexRecord, status: StatusRecord): boolean {
    const key = `${vertex.digest} ${status.id}`;
    const last = this.lastPrinted.get(key);
    const completed = status.completedMs !== undefined;
    const timestampMs = status.timestampMs ?? status.completedMs ?? 0;
    if (last !== undefined) {
      if (last.completed && completed && last.current === status.current) return false;
      if (!completed) {
        const progress = status.total > 0 ? (status.current - last.current) / status.total : 0;
        if (progress < minProgressFraction && timestampMs - last.timestampMs < minStatusIntervalMs)
          return false;
      }
    }
    this.lastPrinted.set(key, { current: status.current, timestampMs, completed });
    return true;
  }
}

/** `sha256:ab12 10.24MB / 20.00MB 0.5s done` */
export function formatStatus(status: StatusRecord): string {
  let text = status.id;
  if (status.total !== 0) text += ` ${formatBytes(status.current)} / ${formatBytes(status.total)}`;
  else if (status.current !== 0) text += ` ${formatBytes(status.current)}`;
  const endMs = status.completedMs ?? status.timestampMs;
  if (status.startedMs !== undefined && endMs !== undefined && endMs - status.startedMs > 10) {
    text += ` ${formatSeconds(endMs - status.startedMs)}`;
  }
  if (status.completedMs !== undefined) text += ' done';
  return text;
}

/** `CANCELED`, `ERROR: …`, `CACHED` or `DONE 1.2s` for a completed step. */
function formatOutcome(vertex: VertexRecord): string {
  if (isCanceled(vertex)) return 'CANCELED';
  if (vertex.error !== undefined) return `ERROR: ${vertex.error}`;
  if (vertex.cached) return 'CACHED';
  if (vertex.startedMs === undefined || vertex.completedMs === undefined) return 'DONE';
  return `DONE ${formatSeconds(vertex.completedMs - vertex.startedMs)}`;
}

/**
 * The block written at the end for each failed step (not for canceled ones): its name and its last
 * log lines between rulers, so the cause is visible without scrolling back.
 */
export function formatErrorSummary(vertexes: readonly VertexRecord[]): string {
  const lines: string[] = [];
  for (const vertex of vertexes) {
    if (vertex.error === undefined || isCanceled(vertex)) continue;
    lines.push('------', ` > ${vertex.name}:`);
    for (const line of vertex.logTail) lines.push(`${formatLogOffset(line.offsetMs)} ${line.text}`);
    lines.push('------');
  }
  return lines.map((line) => `${line}\n`).join('');
}

export interface PlainRendererOptions {
  readonly model: ProgressModel;
  /** local clock, ms */
  readonly now: () => number;
}

/** Writes plain lines as status messages arrive, and the failed steps' logs on close. */
export function createPlainRenderer(out: ProgressOutput, options: PlainRendererOptions): ProgressRenderer {
  const { model, now } = options;
  const printer = new PlainPrinter();
  let closed: Promise<void> | undefined;
  return {
    update(status) {
      if (closed) return;
      const text = printer.format(model.apply(status, now()));
      if (text !== '') out.write(text);
    },
    close() {
      closed ??= writeText(out, printer.format(model.finish()) + formatErrorSummary(model.vertexes));
      return closed;
    },
  };
}
