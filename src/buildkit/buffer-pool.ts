/**
 * Reusable byte buffers for the session's bulk paths (file contents out, tunnel frames), so that a
 * gigabyte sent does not become a gigabyte of garbage: every fresh Node Buffer is an external
 * allocation, and enough of them make V8 run a full mark-compact every few megabytes.
 *
 * Each buffer has `headroom` spare bytes in front of its payload area, where a protobuf field header
 * can be written afterwards, so a message is encoded around data read straight into the buffer.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly waiting: { resolve: (b: Buffer) => void; reject: (e: Error) => void }[] = [];
  private allocated = 0;
  private closed: Error | undefined;

  /**
   * @param payload bytes after the headroom
   * @param max buffers handed out at once by take() (takeNow() may go past it)
   */
  constructor(
    readonly payload: number,
    private readonly max: number,
    readonly headroom = 0,
  ) {}

  /** A free buffer, waiting for one when `max` are out. */
  take(): Promise<Buffer> {
    if (this.closed) return Promise.reject(this.closed);
    const buffer = this.free.pop();
    if (buffer) return Promise.resolve(buffer);
    if (this.allocated < this.max) return Promise.resolve(this.allocate());
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** A free buffer now: allocates when none is free (for callers that cannot wait). */
  takeNow(): Buffer {
    return this.free.pop() ?? this.allocate();
  }

  give(buffer: Buffer): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter.resolve(buffer);
    else if (this.free.length < this.max) this.free.push(buffer);
  }

  /** Fails every pending and later take(). */
  close(err: Error): void {
    this.closed ??= err;
    for (const waiter of this.waiting.splice(0)) waiter.reject(err);
  }

  private allocate(): Buffer {
    this.allocated++;
    // its own ArrayBuffer (not Node's shared slab), starting at offset 0
    return Buffer.allocUnsafeSlow(this.headroom + this.payload);
  }
}

/** Bytes of a protobuf varint. */
function varintLength(n: number): number {
  let length = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    length++;
  }
  return length;
}

function writeVarint(target: Buffer, offset: number, n: number): number {
  while (n >= 0x80) {
    target[offset++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  target[offset++] = n;
  return offset;
}

/**
 * Writes `prefix` (already-encoded fields) and the header of a length-delimited field `tag` in front
 * of `length` payload bytes that sit at `buffer[payloadOffset]`, and returns the whole encoded message
 * as a view of `buffer`: no copy. Throws when the headroom is too small.
 */
export function encodeAroundPayload(
  buffer: Buffer,
  payloadOffset: number,
  length: number,
  prefix: readonly number[],
  tag: number,
): Buffer {
  const headerLength = prefix.length + 1 + varintLength(length);
  const start = payloadOffset - headerLength;
  if (start < 0) throw new Error(`no headroom for a ${headerLength}-byte header`);
  let at = start;
  for (const byte of prefix) buffer[at++] = byte;
  buffer[at++] = tag;
  writeVarint(buffer, at, length);
  return buffer.subarray(start, payloadOffset + length);
}

/** The encoded bytes of a protobuf varint field `fieldNumber` = `value` (empty for 0, as proto3 omits it). */
export function varintField(fieldNumber: number, value: number): number[] {
  if (value === 0) return [];
  const out = Buffer.alloc(1 + varintLength(value));
  out[0] = fieldNumber << 3;
  writeVarint(out, 1, value);
  return [...out];
}
