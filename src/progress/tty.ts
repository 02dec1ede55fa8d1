/**
 * TTY progress: a compact list of steps redrawn in place, in the spirit of BuildKit's console view.
 *
 *     [+] Building 14.2s (6/9)
 *      => CACHED [1/4] FROM python:3.11-slim                              0.0s
 *      => [2/4] RUN pip install -r requirements.txt                       12.3s
 *      => => # Collecting numpy
 *      => => # Downloading numpy-2.1.0.whl (16.3 MB)
 *      => exporting to image                                               0.4s
 *      => => pushing layer sha256:ab12… 10.24MB / 20.00MB                  0.4s
 *
 * A running step shows its last log lines under it (`logLines`, BUILDKIT_TTY_LOG_LINES). Redraws are
 * throttled to one per `refreshMs` and also happen on a timer so running clocks move. The cursor goes
 * back up over the previous frame, each line is rewritten and cleared to its end, and lines are cut to
 * the terminal width so none wraps. On close the whole list is drawn once more without the logs,
 * followed by the last log lines of failed steps. Colors (done blue, failed red, canceled and warnings
 * yellow, logs faint) are left out when `color` is false (NO_COLOR).
 */
import { isCanceled, isRunning, type ProgressModel, type VertexRecord } from './model.js';
import { type ProgressOutput, type ProgressRenderer, writeText } from './output.js';
import { formatErrorSummary } from './plain.js';
import { formatBytes, formatSeconds } from './time.js';

export interface TtyFrameOptions {
  /** local time, ms */
  readonly nowMs: number;
  /** local time the renderer started, for the header clock before any step started */
  readonly startMs: number;
  /** terminal columns */
  readonly width: number;
  /** terminal rows; a frame that is not final keeps within them by dropping finished steps */
  readonly height: number | undefined;
  /** log lines shown under a running step */
  readonly logLines: number;
  readonly color: boolean;
  /** the closing frame: FINISHED in the header, no logs, no height limit */
  readonly final: boolean;
}

const sgr = { reset: '\x1b[0m', faint: '\x1b[2m', red: '\x1b[31m', yellow: '\x1b[33m', blue: '\x1b[34m' };
const minWidth = 20;

/** One step's lines: the step itself, then its statuses, logs and warnings. */
interface Block {
  readonly lines: string[];
  readonly finished: boolean;
}

/** The lines of one frame (no cursor movement, no newlines). */
export function renderTtyFrame(model: ProgressModel, options: TtyFrameOptions): string[] {
  const width = Math.max(minWidth, options.width);
  const paint = (code: string, text: string) => (options.color ? `${code}${text}${sgr.reset}` : text);
  const counts = model.counts();
  const elapsed = options.nowMs - (model.firstStartLocalMs() ?? options.startMs);
  const finished = options.final && counts.total > 0 && counts.completed === counts.total;
  const header = cut(
    `[+] Building ${formatSeconds(elapsed)} (${counts.completed}/${counts.total})${finished ? ' FINISHED' : ''}`,
    width - 1,
  );

  const blocks: Block[] = [];
  for (const vertex of model.vertexes) {
    const lines: string[] = [];
    const color = vertexColor(vertex);
    const stepLine = align(
      ` => ${outcomePrefix(vertex)}${clean(vertex.name)}`,
      stepTime(model, vertex, options),
      width,
    );
    lines.push(color === undefined ? stepLine : paint(color, stepLine));
    for (const status of vertex.statuses.values()) {
      let text = ` => => ${clean(status.id)}`;
      if (status.total !== 0) text += ` ${formatBytes(status.current)} / ${formatBytes(status.total)}`;
      else if (status.current !== 0) text += ` ${formatBytes(status.current)}`;
      let timer = '';
      if (status.startedMs !== undefined) {
        const end = status.completedMs ?? options.nowMs - model.clockOffsetMs;
        timer = formatSeconds(end - status.startedMs);
      }
      const line = align(text, timer, width);
      lines.push(status.completedMs !== undefined && options.color ? paint(sgr.blue, line) : line);
    }
    if (!options.final && isRunning(vertex) && options.logLines > 0) {
      const recent = [...vertex.logTail.map((line) => line.text), ...model.pendingText(vertex)]
        .map(clean)
        .filter((text) => text.trim() !== '')
        .slice(-options.logLines);
      for (const text of recent) lines.push(paint(sgr.faint, cut(` => => # ${text}`, width - 1)));
    }
    for (const warning of vertex.warnings)
      lines.push(paint(sgr.yellow, cut(` => WARN: ${clean(warning)}`, width - 1)));
    blocks.push({ lines, finished: vertex.completedMs !== undefined });
  }

  const room = options.final || options.height === undefined ? Infinity : Math.max(1, options.height - 2);
  return [header, ...fitBlocks(blocks, room)];
}

/** Keeps a frame within `room` lines: finished steps go first (oldest first), then the top is cut. */
function fitBlocks(blocks: readonly Block[], room: number): string[] {
  let kept = [...blocks];
  let count = kept.reduce((sum, block) => sum + block.lines.length, 0);
  for (let i = 0; count > room && i < kept.length;) {
    const block = kept[i];
    if (block !== undefined && block.finished) {
      count -= block.lines.length;
      kept = [...kept.slice(0, i), ...kept.slice(i + 1)];
    } else {
      i += 1;
    }
  }
  const lines = kept.flatMap((block) => block.lines);
  return lines.length > room ? lines.slice(lines.length - room) : lines;
}

function outcomePrefix(vertex: VertexRecord): string {
  let prefix = '';
  if (vertex.cached) prefix += 'CACHED ';
  if (isCanceled(vertex)) prefix += 'CANCELED ';
  else if (vertex.error !== undefined) prefix += 'ERROR ';
  return prefix;
}

function vertexColor(vertex: VertexRecord): string | undefined {
  if (vertex.completedMs === undefined) return undefined;
  if (isCanceled(vertex)) return sgr.yellow;
  if (vertex.error !== undefined) return sgr.red;
  return sgr.blue;
}

function stepTime(model: ProgressModel, vertex: VertexRecord, options: TtyFrameOptions): string {
  const ms = model.elapsedMs(vertex, options.nowMs);
  return formatSeconds(ms < 50 ? 0 : ms);
}

/** `left` cut or padded so that `left right` is `width - 1` columns (the last column stays free). */
function align(left: string, right: string, width: number): string {
  const room = width - 1 - right.length - 1;
  return `${cut(left, room).padEnd(room)} ${right}`;
}

function cut(text: string, length: number): string {
  return text.length > length ? text.slice(0, Math.max(0, length)) : text;
}

/* eslint-disable no-control-regex -- these match terminal control characters on purpose */
/** CSI sequences (colors, cursor moves), OSC sequences (titles, links) and other two-byte escapes */
const escapeSequences = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b./g;
const controlCharacters = /[\x00-\x1f\x7f]/g;
/* eslint-enable no-control-regex */

/** What a terminal would show of a log line: no escape sequences, text after the last `\r`, no tabs. */
function clean(text: string): string {
  const withoutEscapes = text.replace(escapeSequences, '');
  const visible = withoutEscapes.slice(withoutEscapes.lastIndexOf('\r') + 1);
  return visible.replace(/\t/g, '    ').replace(controlCharacters, '');
}

/** Turns frames into terminal output that overwrites the previous frame. */
export class TtyScreen {
  private lineCount = 0;

  /** The bytes that replace the previous frame with `lines`; the cursor ends below the frame. */
  redraw(lines: readonly string[]): string {
    let text = '\x1b[?25l'; // hide the cursor while drawing
    if (this.lineCount > 0) text += `\x1b[${this.lineCount}A`;
    text += '\r';
    for (const line of lines) text += `${line}\x1b[K\n`;
    text += '\x1b[J\x1b[?25h'; // clear what is left of a longer previous frame; show the cursor
    this.lineCount = lines.length;
    return text;
  }
}

export interface TtyRendererOptions {
  readonly model: ProgressModel;
  /** local clock, ms */
  readonly now: () => number;
  readonly refreshMs: number;
  readonly logLines: number;
  readonly color: boolean;
}

export function createTtyRenderer(out: ProgressOutput, options: TtyRendererOptions): ProgressRenderer {
  const { model, now } = options;
  const screen = new TtyScreen();
  const startMs = now();
  let lastDrawMs = -Infinity;
  let dirty = false;
  let closed: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const frame = (final: boolean) =>
    renderTtyFrame(model, {
      nowMs: now(),
      startMs,
      // a terminal that reports no size (0 columns, as some CI ptys do) gets the usual 80
      width: out.columns !== undefined && out.columns >= 20 ? out.columns : 80,
      height: out.rows,
      logLines: options.logLines,
      color: options.color,
      final,
    });
  const draw = () => {
    lastDrawMs = now();
    dirty = false;
    out.write(screen.redraw(frame(false)));
  };

  return {
    update(status) {
      if (closed) return;
      model.apply(status, now());
      dirty = true;
      if (timer === undefined) {
        timer = setInterval(() => {
          if (dirty || model.vertexes.some(isRunning)) draw();
        }, options.refreshMs);
        timer.unref();
      }
      if (now() - lastDrawMs >= options.refreshMs) draw();
    },
    close() {
      closed ??= (async () => {
        clearInterval(timer);
        model.finish();
        const text = screen.redraw(frame(true)) + formatErrorSummary(model.vertexes);
        await writeText(out, text);
      })();
      return closed;
    },
  };
}
