/**
 * Progress of a registry push (the events `pushImage` emits), on stderr:
 *
 * - tty: one row per blob (short digest, state, bytes done / size and, while it uploads, its own rate)
 *   under a header with the total and the upload throughput, redrawn in place at most every `refreshMs`;
 *
 *       Pushing r8.im/user/model:latest  41.1 MiB / 113.2 MiB  23.4 MiB/s
 *        sha256:316bb65d37d0  uploading  12.3 MiB / 77.6 MiB  12.1 MiB/s
 *        sha256:de2f17728474  exists     2.3 KiB
 *
 * - plain: a stable line whenever a blob reaches a new state (`pushing …`, `exists …`, `mounted …`,
 *   `pushed … in 1.2s (10.3 MiB/s)`); no line for waiting and checking; while bytes flow, a line with
 *   the totals only when nothing was printed for `plainEveryMs` (10 s), so a CI log of a long upload
 *   never looks stalled;
 * - rawjson: each event as one JSON line; quiet: nothing.
 */
import type { BlobState, PushProgress } from '../registry/push.js';
import { formatSize } from '../image/inspect.js';
import type { ResolvedProgressMode } from './index.js';
import { type ProgressOutput, writeText } from './output.js';

export interface PushProgressRenderer {
  readonly onProgress: (event: PushProgress) => void;
  /** a line of its own (e.g. a retry), above the live view on a terminal */
  readonly note: (line: string) => void;
  /** draws the final view; resolves once written. Idempotent. */
  close(): Promise<void>;
}

export interface BlobView {
  readonly digest: string;
  size: number;
  done: number;
  state: BlobState;
  /** when the upload started and ended (ms), for `pushed … in 1.2s` */
  startedMs?: number;
  endedMs?: number;
}

export interface PushView {
  readonly target: string;
  readonly blobs: Map<string, BlobView>;
  total: PushProgress['total'];
}

/** `sha256:` and the first 12 hex digits. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return colon < 0
    ? digest.slice(0, 12)
    : `${digest.slice(0, colon + 1)}${digest.slice(colon + 1, colon + 13)}`;
}

/** Throughput in binary units per second: `23.4 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatSize(Math.round(bytesPerSecond))}/s`;
}

/** Whether a blob is done: in the registry, by upload, mount or because it was there. */
const isFinished = (state: BlobState) => state === 'pushed' || state === 'exists' || state === 'mounted';

/**
 * Applies an event to the view; returns the blob's previous state (undefined for a new blob). Byte counts
 * only go forward: an event with fewer bytes than shown (a resent chunk) keeps the higher count.
 */
export function applyPushEvent(view: PushView, event: PushProgress, nowMs: number): BlobState | undefined {
  const { digest, size, done, state } = event.blob;
  let blob = view.blobs.get(digest);
  const previous = blob?.state;
  if (!blob) {
    blob = { digest, size, done, state };
    view.blobs.set(digest, blob);
  }
  blob.size = size;
  blob.done = Math.max(blob.done, done);
  blob.state = state;
  // an upload starts its clock once; a blob uploaded again after the registry lost it starts anew
  if (state === 'uploading' && (blob.startedMs === undefined || blob.endedMs !== undefined)) {
    blob.startedMs = nowMs;
    delete blob.endedMs;
  }
  if (isFinished(state)) blob.endedMs ??= nowMs;
  view.total = { ...event.total, done: Math.max(view.total.done, event.total.done) };
  return previous;
}

/** The plain-mode line for a blob that just reached `blob.state`, or undefined when none is due. */
export function plainPushLine(blob: BlobView): string | undefined {
  const id = shortDigest(blob.digest);
  const size = formatSize(blob.size);
  switch (blob.state) {
    case 'uploading':
      return `pushing ${id} ${size}`;
    case 'exists':
      return `exists  ${id} ${size}`;
    case 'mounted':
      return `mounted ${id} ${size}`;
    case 'pushed': {
      const ms =
        blob.startedMs !== undefined && blob.endedMs !== undefined ? blob.endedMs - blob.startedMs : 0;
      const rate = ms > 0 ? ` (${formatRate((blob.size * 1000) / ms)})` : '';
      return `pushed  ${id} ${size} in ${(ms / 1000).toFixed(1)}s${rate}`;
    }
    default:
      return undefined;
  }
}

/** Plain mode's line during a long upload: how much of the image the registry holds, and the rate. */
export function plainTotalLine(view: PushView): string {
  const { done, size, bytesPerSecond } = view.total;
  return `pushing ${view.target}: ${formatSize(done)} / ${formatSize(size)}, ${formatRate(bytesPerSecond)}`;
}

const stateWidth = 'uploading'.length;

/** The bytes column of a blob's row: an upload shows how far it is and, once it has run, its own rate. */
function blobBytes(b: BlobView, nowMs: number): string {
  if (b.state !== 'uploading') return formatSize(b.size);
  const elapsedMs = b.startedMs === undefined ? 0 : nowMs - b.startedMs;
  const rate = elapsedMs > 0 ? `  ${formatRate((b.done * 1000) / elapsedMs)}` : '';
  return `${formatSize(b.done)} / ${formatSize(b.size)}${rate}`;
}

/** The lines of one tty frame at `nowMs`, each cut to `width` columns. */
/** Which blobs a frame too short for all of them shows first: the moving ones, then the pending. */
const showFirst: Readonly<Record<BlobState, number>> = {
  uploading: 0,
  checking: 1,
  waiting: 2,
  pushed: 3,
  mounted: 3,
  exists: 3,
};

/**
 * The tty frame: a header with the totals and a row per blob, cut to `width`; within `height` lines
 * (a terminal's rows, less one for the cursor) when given, the uploading and pending blobs first and
 * one line counting the rest, in their order: a frame taller than the terminal cannot be redrawn in place.
 */
export function renderPushFrame(view: PushView, width: number, nowMs: number, height?: number): string[] {
  const { done, size, bytesPerSecond } = view.total;
  const header = `Pushing ${view.target}  ${formatSize(done)} / ${formatSize(size)}  ${formatRate(bytesPerSecond)}`;
  let blobs = [...view.blobs.values()];
  let more = '';
  if (height !== undefined && height >= 3 && blobs.length + 1 > height) {
    const room = height - 2; // the header and the line counting the rest
    const shown = new Set([...blobs].sort((a, b) => showFirst[a.state] - showFirst[b.state]).slice(0, room));
    const hidden = blobs.filter((b) => !shown.has(b));
    const finished = hidden.filter((b) => isFinished(b.state)).length;
    more = ` … ${hidden.length} more (${finished} done, ${hidden.length - finished} to go)`;
    blobs = blobs.filter((b) => shown.has(b));
  }
  const rows = blobs.map(
    (b) => ` ${shortDigest(b.digest)}  ${b.state.padEnd(stateWidth)}  ${blobBytes(b, nowMs)}`,
  );
  return [header, ...rows, ...(more ? [more] : [])].map((line) =>
    line.length > width ? line.slice(0, Math.max(1, width)) : line,
  );
}

export interface PushProgressOptions {
  /** what is being pushed, for the tty header */
  readonly target: string;
  readonly refreshMs?: number;
  /** plain mode: while a blob uploads, a line with the totals when nothing was printed for this long */
  readonly plainEveryMs?: number;
  readonly now?: () => number;
}

export function createPushProgress(
  mode: ResolvedProgressMode,
  out: ProgressOutput,
  options: PushProgressOptions,
): PushProgressRenderer {
  const now = options.now ?? Date.now;
  const view: PushView = {
    target: options.target,
    blobs: new Map(),
    total: { done: 0, size: 0, bytesPerSecond: 0 },
  };
  let closed = false;
  if (mode === 'quiet')
    return {
      onProgress: () => {},
      note: () => {},
      close: () => Promise.resolve(),
    };
  if (mode === 'rawjson')
    return {
      onProgress: (event) => {
        if (!closed) out.write(`${JSON.stringify({ push: event })}\n`);
      },
      note: (line) => {
        if (!closed) out.write(`${JSON.stringify({ note: line })}\n`);
      },
      close: () => {
        closed = true;
        return Promise.resolve();
      },
    };
  if (mode === 'plain') {
    const everyMs = options.plainEveryMs ?? 10_000;
    let lastLine = now();
    return {
      onProgress: (event) => {
        if (closed) return;
        const at = now();
        const previous = applyPushEvent(view, event, at);
        const blob = view.blobs.get(event.blob.digest)!;
        const line =
          previous !== blob.state
            ? plainPushLine(blob)
            : blob.state === 'uploading' && at - lastLine >= everyMs
              ? plainTotalLine(view)
              : undefined;
        if (!line) return;
        out.write(`${line}\n`);
        lastLine = at;
      },
      note: (line) => {
        if (!closed) out.write(`${line}\n`);
      },
      close: () => {
        closed = true;
        return Promise.resolve();
      },
    };
  }

  // tty: redraw in place, throttled
  const refreshMs = options.refreshMs ?? 120;
  let drawnLines = 0;
  let lastDraw = 0;
  let timer: NodeJS.Timeout | undefined;
  /** a terminal that reports no size (some ptys say 0) gets 100 columns */
  const width = () => (out.columns !== undefined && out.columns >= 20 ? out.columns - 1 : 100);
  /** the terminal's rows less one, when it reports them */
  const height = () => (out.rows !== undefined && out.rows >= 4 ? out.rows - 1 : undefined);
  const draw = () => {
    timer = undefined;
    lastDraw = now();
    const lines = renderPushFrame(view, width(), lastDraw, height());
    const up = drawnLines > 0 ? `\x1b[${drawnLines}A\r` : '';
    out.write(`${up}${lines.map((l) => `${l}\x1b[K\n`).join('')}`);
    drawnLines = lines.length;
  };
  return {
    onProgress: (event) => {
      if (closed) return;
      applyPushEvent(view, event, now());
      if (timer) return;
      const wait = lastDraw + refreshMs - now();
      if (wait <= 0) draw();
      else timer = setTimeout(draw, wait);
    },
    note: (line) => {
      if (closed) return;
      // over the live view, which is drawn again below it
      const up = drawnLines > 0 ? `\x1b[${drawnLines}A\r\x1b[J` : '';
      out.write(`${up}${line}\n`);
      drawnLines = 0;
      if (view.blobs.size > 0 && !timer) draw();
    },
    close: async () => {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      if (view.blobs.size === 0) return;
      lastDraw = 0;
      const lines = renderPushFrame(view, width(), now(), height());
      const up = drawnLines > 0 ? `\x1b[${drawnLines}A\r` : '';
      await writeText(out, `${up}${lines.map((l) => `${l}\x1b[K\n`).join('')}`);
    },
  };
}
