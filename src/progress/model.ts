/**
 * The progress model: folds BuildKit status messages into one record per vertex (build step), in the
 * order steps start, and reports what changed as a list of events. It writes nothing; renderers turn
 * the events (plain) or the records (tty) into text.
 *
 * What it follows from BuildKit's own progress UI:
 *  - a vertex is shown from the moment it starts and gets its number (`#1`, `#2`, …) then; vertexes
 *    that never start (skipped after an error elsewhere) are counted but not shown;
 *  - a vertex is re-sent whole whenever it changes; a copy without a start time that arrives after it
 *    started is a stale duplicate and is ignored;
 *  - logs arrive as byte chunks per stream; they are decoded as UTF-8 (characters split across chunks
 *    are kept whole) and cut into lines, each stamped with the seconds since its step started;
 *  - times are the daemon's; `clockOffsetMs` (local minus daemon time: the least gap seen between a
 *    message's latest time and when it arrived) turns them into local time for steps still running.
 */
import type {
  moby_buildkit_v1_StatusResponse,
  moby_buildkit_v1_Vertex,
  moby_buildkit_v1_VertexLog,
  moby_buildkit_v1_VertexStatus,
  moby_buildkit_v1_VertexWarning,
} from '../gen/types.js';
import { TextDecoder } from 'node:util';
import { timestampMs } from './time.js';

/** A progress item inside a step, e.g. a layer being pulled or pushed. Times are daemon ms. */
export interface StatusRecord {
  readonly id: string;
  readonly name: string | undefined;
  readonly current: number;
  readonly total: number;
  readonly timestampMs: number | undefined;
  readonly startedMs: number | undefined;
  readonly completedMs: number | undefined;
}

/** One whole log line of a step; `offsetMs` is the time since the step started. */
export interface LogLine {
  readonly offsetMs: number;
  readonly text: string;
  /** 1 stdout, 2 stderr */
  readonly stream: number;
}

/** A build step as known so far. Times are daemon ms since the epoch. */
export interface VertexRecord {
  readonly digest: string;
  /** 1-based, in the order steps start (0 until the step is shown) */
  index: number;
  name: string;
  inputs: readonly string[];
  cached: boolean;
  startedMs: number | undefined;
  completedMs: number | undefined;
  error: string | undefined;
  /** by status ID, in order of first appearance */
  readonly statuses: Map<string, StatusRecord>;
  /** the last complete log lines (at most the model's `logTailLines`) */
  readonly logTail: LogLine[];
  readonly warnings: string[];
}

export type ProgressEvent =
  | { readonly kind: 'started'; readonly vertex: VertexRecord }
  | { readonly kind: 'log'; readonly vertex: VertexRecord; readonly line: LogLine }
  | { readonly kind: 'status'; readonly vertex: VertexRecord; readonly status: StatusRecord }
  | { readonly kind: 'warning'; readonly vertex: VertexRecord; readonly message: string }
  | { readonly kind: 'completed'; readonly vertex: VertexRecord };

export interface ProgressModelOptions {
  /** how many complete log lines to keep per step (for the tty view and error summaries); default 10 */
  readonly logTailLines?: number;
}

/** A line still being written: text so far, and when (relative to step start) it began. */
interface PendingLine {
  readonly decoder: TextDecoder;
  text: string;
  offsetMs: number;
}

const canceledSuffix = 'context canceled';

export function isCanceled(vertex: VertexRecord): boolean {
  return vertex.error !== undefined && vertex.error.endsWith(canceledSuffix);
}

export function isRunning(vertex: VertexRecord): boolean {
  return vertex.startedMs !== undefined && vertex.completedMs === undefined;
}

export class ProgressModel {
  /** local time minus daemon time (the least gap seen between a time sent and its arrival); 0 at first */
  clockOffsetMs = 0;
  private clockMeasured = false;
  private readonly logTailLines: number;
  private readonly byDigest = new Map<string, VertexRecord>();
  private readonly shown: VertexRecord[] = [];
  /** per digest, per stream */
  private readonly pending = new Map<string, Map<number, PendingLine>>();
  /** what the last reported completion looked like, per digest, so repeats are not reported twice */
  private readonly reportedCompletion = new Map<string, string>();
  private firstStartMs: number | undefined;

  constructor(options: ProgressModelOptions = {}) {
    this.logTailLines = Math.max(0, options.logTailLines ?? 10);
  }

  /** Steps that have been shown, in order of their numbers. */
  get vertexes(): readonly VertexRecord[] {
    return this.shown;
  }

  /** All steps BuildKit told about (shown or not) and how many of them completed. */
  counts(): { total: number; completed: number } {
    let completed = 0;
    for (const vertex of this.byDigest.values()) if (vertex.completedMs !== undefined) completed += 1;
    return { total: this.byDigest.size, completed };
  }

  /** Local time (ms) of the first step start, if any step started. */
  firstStartLocalMs(): number | undefined {
    return this.firstStartMs === undefined ? undefined : this.firstStartMs + this.clockOffsetMs;
  }

  /** How long a step has run: to its completion, or to `localNowMs` if still running. */
  elapsedMs(vertex: VertexRecord, localNowMs: number): number {
    if (vertex.startedMs === undefined) return 0;
    const end = vertex.completedMs ?? localNowMs - this.clockOffsetMs;
    return Math.max(0, end - vertex.startedMs);
  }

  /** The unfinished last line of each of a step's streams (text not yet ended by a newline). */
  pendingText(vertex: VertexRecord): string[] {
    const streams = this.pending.get(vertex.digest);
    if (!streams) return [];
    return [...streams.values()].map((line) => line.text).filter((text) => text !== '');
  }

  /**
   * Folds one status message in and returns what changed, grouped by step: first the steps that
   * completed in this message (in order of completion), then the others in the order they were
   * touched. A step's events go: started, statuses, warnings, log lines, completed (after its last
   * line, so a log reads top to bottom).
   */
  apply(status: moby_buildkit_v1_StatusResponse, localNowMs: number): ProgressEvent[] {
    const events: ProgressEvent[] = [];
    const touched = new Set<VertexRecord>();
    this.measureClock(status, localNowMs);
    for (const vertex of status.vertexes ?? []) this.applyVertex(vertex, events, touched);
    for (const item of status.statuses ?? []) this.applyStatus(item, events);
    for (const warning of status.warnings ?? []) this.applyWarning(warning, events);
    for (const log of status.logs ?? []) this.applyLog(log, events);
    const completed: VertexRecord[] = [];
    for (const vertex of touched) {
      if (vertex.completedMs === undefined) {
        this.reportedCompletion.delete(vertex.digest); // running (again)
        continue;
      }
      const completion = `${vertex.completedMs}|${vertex.cached}|${vertex.error ?? ''}`;
      if (this.reportedCompletion.get(vertex.digest) === completion) continue;
      this.reportedCompletion.set(vertex.digest, completion);
      this.flushPending(vertex, events);
      events.push({ kind: 'completed', vertex });
      completed.push(vertex);
    }
    return groupByVertex(events, completed);
  }

  /** Ends every unfinished log line (the stream is over); returns them as log events. */
  finish(): ProgressEvent[] {
    const events: ProgressEvent[] = [];
    for (const vertex of this.shown) this.flushPending(vertex, events);
    return events;
  }

  private applyVertex(
    update: moby_buildkit_v1_Vertex,
    events: ProgressEvent[],
    touched: Set<VertexRecord>,
  ): void {
    const digest = update.digest ?? '';
    const startedMs = timestampMs(update.started);
    let vertex = this.byDigest.get(digest);
    if (vertex === undefined) {
      vertex = {
        digest,
        index: 0,
        name: '',
        inputs: [],
        cached: false,
        startedMs: undefined,
        completedMs: undefined,
        error: undefined,
        statuses: new Map(),
        logTail: [],
        warnings: [],
      };
      this.byDigest.set(digest, vertex);
    } else if (vertex.startedMs !== undefined && startedMs === undefined) {
      return; // a stale copy from before the step started
    }
    vertex.name = update.name ?? '';
    vertex.inputs = update.inputs ?? [];
    vertex.cached = update.cached ?? false;
    vertex.startedMs = startedMs;
    vertex.completedMs = timestampMs(update.completed);
    vertex.error = update.error === '' ? undefined : update.error;

    if (startedMs === undefined) return;
    if (this.firstStartMs === undefined || startedMs < this.firstStartMs) this.firstStartMs = startedMs;
    this.show(vertex, events);
    touched.add(vertex);
  }

  /** Daemon times are never later than their arrival, so the least gap is the best clock offset. */
  private measureClock(status: moby_buildkit_v1_StatusResponse, localNowMs: number): void {
    const times = [
      ...(status.vertexes ?? []).flatMap((v) => [v.started, v.completed]),
      ...(status.statuses ?? []).flatMap((s) => [s.timestamp, s.started, s.completed]),
      ...(status.logs ?? []).map((l) => l.timestamp),
    ]
      .map(timestampMs)
      .filter((ms) => ms !== undefined);
    if (times.length === 0) return;
    const gap = localNowMs - Math.max(...times);
    if (!this.clockMeasured || gap < this.clockOffsetMs) this.clockOffsetMs = gap;
    this.clockMeasured = true;
  }

  private applyStatus(update: moby_buildkit_v1_VertexStatus, events: ProgressEvent[]): void {
    const vertex = this.byDigest.get(update.vertex ?? '');
    if (vertex === undefined) return; // BuildKit always sends the vertex first
    const id = update.ID ?? update.name ?? '';
    const status: StatusRecord = {
      id,
      name: update.name,
      current: Number(update.current ?? 0),
      total: Number(update.total ?? 0),
      timestampMs: timestampMs(update.timestamp),
      startedMs: timestampMs(update.started),
      completedMs: timestampMs(update.completed),
    };
    vertex.statuses.set(id, status);
    this.show(vertex, events);
    events.push({ kind: 'status', vertex, status });
  }

  private applyWarning(update: moby_buildkit_v1_VertexWarning, events: ProgressEvent[]): void {
    const vertex = this.byDigest.get(update.vertex ?? '');
    if (vertex === undefined) return;
    const message = new TextDecoder().decode(update.short ?? new Uint8Array());
    vertex.warnings.push(message);
    this.show(vertex, events);
    events.push({ kind: 'warning', vertex, message });
  }

  private applyLog(update: moby_buildkit_v1_VertexLog, events: ProgressEvent[]): void {
    const vertex = this.byDigest.get(update.vertex ?? '');
    if (vertex === undefined) return;
    this.show(vertex, events);
    const stream = Number(update.stream ?? 0);
    const at = timestampMs(update.timestamp);
    const offsetMs = at !== undefined && vertex.startedMs !== undefined ? at - vertex.startedMs : 0;
    let streams = this.pending.get(vertex.digest);
    if (streams === undefined) {
      streams = new Map();
      this.pending.set(vertex.digest, streams);
    }
    let line = streams.get(stream);
    if (line === undefined) {
      line = { decoder: new TextDecoder('utf-8'), text: '', offsetMs };
      streams.set(stream, line);
    }
    const pieces = line.decoder.decode(update.msg ?? new Uint8Array(), { stream: true }).split('\n');
    const last = pieces.pop() ?? '';
    for (const piece of pieces) {
      if (line.text === '') line.offsetMs = offsetMs;
      this.emitLine(vertex, { offsetMs: line.offsetMs, text: stripCr(line.text + piece), stream }, events);
      line.text = '';
    }
    if (last !== '') {
      if (line.text === '') line.offsetMs = offsetMs;
      line.text += last;
    }
  }

  private flushPending(vertex: VertexRecord, events: ProgressEvent[]): void {
    const streams = this.pending.get(vertex.digest);
    if (streams === undefined) return;
    for (const [stream, line] of streams) {
      const text = line.text + line.decoder.decode();
      if (text !== '')
        this.emitLine(vertex, { offsetMs: line.offsetMs, text: stripCr(text), stream }, events);
    }
    this.pending.delete(vertex.digest);
  }

  private emitLine(vertex: VertexRecord, line: LogLine, events: ProgressEvent[]): void {
    vertex.logTail.push(line);
    if (vertex.logTail.length > this.logTailLines)
      vertex.logTail.splice(0, vertex.logTail.length - this.logTailLines);
    events.push({ kind: 'log', vertex, line });
  }

  /** Numbers a step the first time it has something to show. */
  private show(vertex: VertexRecord, events: ProgressEvent[]): void {
    if (vertex.index !== 0) return;
    this.shown.push(vertex);
    vertex.index = this.shown.length;
    events.push({ kind: 'started', vertex });
  }
}

/** Events regrouped per step: the steps in `completedFirst` (sorted by completion), then the rest. */
function groupByVertex(
  events: readonly ProgressEvent[],
  completedFirst: readonly VertexRecord[],
): ProgressEvent[] {
  const groups = new Map<VertexRecord, ProgressEvent[]>();
  const byCompletion = [...completedFirst].sort((a, b) => (a.completedMs ?? 0) - (b.completedMs ?? 0));
  for (const vertex of byCompletion) groups.set(vertex, []);
  for (const event of events) {
    const group = groups.get(event.vertex);
    if (group) group.push(event);
    else groups.set(event.vertex, [event]);
  }
  return [...groups.values()].flat();
}

function stripCr(text: string): string {
  return text.endsWith('\r') ? text.slice(0, -1) : text;
}
