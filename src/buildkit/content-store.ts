/**
 * The session's content store service (containerd.services.content.v1.Content), as BuildKit's
 * session/content attachable serves it: the daemon names the store on every call with the gRPC metadata
 * key `buildkit-attachable-store-id`, so one service serves several directories. The daemon reads OCI
 * layouts through it (`oci-layout://` sources, store ids `oci:NAME`) and reads and writes local caches
 * (`--cache-from/--cache-to type=local`, store ids `local:DIR`).
 *
 * Reads stream from disk in chunks; writes stream to a temp file, hashed on the way, and are verified
 * before they are renamed into place (see image/content-dir.ts).
 */
import * as grpc from '@grpc/grpc-js';
import type {
  containerd_services_content_v1_AbortRequest,
  containerd_services_content_v1_DeleteContentRequest,
  containerd_services_content_v1_Info,
  containerd_services_content_v1_InfoRequest,
  containerd_services_content_v1_ReadContentRequest,
  containerd_services_content_v1_Status,
  containerd_services_content_v1_StatusRequest,
  containerd_services_content_v1_UpdateRequest,
  containerd_services_content_v1_WriteContentRequest,
  containerd_services_content_v1_WriteContentResponse,
  google_protobuf_Timestamp,
} from '../gen/types.js';
import {
  type BlobInfo,
  ContentDir,
  ContentError,
  type ContentErrorKind,
  type Ingest,
  type IngestStatus,
} from '../image/content-dir.js';
import type { SessionService } from './session.js';

/** The metadata key that names the store (BuildKit's session/content GRPCHeaderID). */
export const storeIdHeader = 'buildkit-attachable-store-id';

/** Store ids the daemon uses: `oci:` + the oci-layout source's oci.store attribute… */
export const ociStoreId = (name: string) => `oci:${name}`;
/** …and `local:` + the dest/src attribute of a local cache. */
export const localCacheStoreId = (dir: string) => `local:${dir}`;
/** The store an oci/docker export with tar=false writes into. */
export const exportStoreId = 'export';

export interface ContentStoreSpec {
  readonly root: string;
  /** the daemon may write (cache export) or only read (image store, cache import) */
  readonly writable: boolean;
}

const WRITE_STAT = 0;
const WRITE_WRITE = 1;
const WRITE_COMMIT = 2;

const codes: Record<ContentErrorKind, grpc.status> = {
  'not-found': grpc.status.NOT_FOUND,
  'already-exists': grpc.status.ALREADY_EXISTS,
  unavailable: grpc.status.UNAVAILABLE,
  'failed-precondition': grpc.status.FAILED_PRECONDITION,
  'out-of-range': grpc.status.OUT_OF_RANGE,
  'invalid-argument': grpc.status.INVALID_ARGUMENT,
  'permission-denied': grpc.status.PERMISSION_DENIED,
};

/** A gRPC status error for a failure; unexpected ones are UNKNOWN. */
export function statusError(err: unknown): grpc.ServiceError {
  const code = err instanceof ContentError ? codes[err.kind] : grpc.status.UNKNOWN;
  const message = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() });
}

function timestamp(date: Date): google_protobuf_Timestamp {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

function infoMessage(info: BlobInfo): containerd_services_content_v1_Info {
  return {
    digest: info.digest,
    size: info.size,
    created_at: timestamp(info.createdAt),
    updated_at: timestamp(info.updatedAt),
  };
}

function statusMessage(status: IngestStatus): containerd_services_content_v1_Status {
  return {
    started_at: timestamp(status.startedAt),
    updated_at: timestamp(status.updatedAt),
    ref: status.ref,
    offset: status.offset,
    total: status.total,
    expected: status.expected,
  };
}

const num = (value: number | string | undefined) => Number(value ?? 0);

/** Serves `stores` (store id → directory) over the session. */
export function contentService(stores: Readonly<Record<string, ContentStoreSpec>>): SessionService {
  const dirs = new Map(
    Object.entries(stores).map(([id, spec]) => [id, new ContentDir(spec.root, spec.writable)]),
  );
  const choose = (metadata: grpc.Metadata): ContentDir => {
    const id = metadata.get(storeIdHeader)[0];
    if (id === undefined)
      throw new ContentError('invalid-argument', `request lacks metadata "${storeIdHeader}"`);
    const dir = dirs.get(String(id));
    if (!dir) throw new ContentError('not-found', `unknown store ${String(id)}`);
    return dir;
  };
  const unary =
    <Req, Res>(handle: (dir: ContentDir, request: Req) => Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      Promise.resolve()
        .then(() => handle(choose(call.metadata), call.request))
        .then(
          (response) => callback(null, response),
          (err: unknown) => callback(statusError(err)),
        );
    };

  return {
    name: 'containerd.services.content.v1.Content',
    implementation: {
      Info: unary(async (dir, req: containerd_services_content_v1_InfoRequest) => ({
        info: infoMessage(await dir.info(req.digest ?? '')),
      })),
      // labels are not kept: answer with the blob's info, as a store without labels would
      Update: unary(async (dir, req: containerd_services_content_v1_UpdateRequest) => ({
        info: infoMessage(await dir.info(req.info?.digest ?? '')),
      })),
      Delete: unary(async (dir, req: containerd_services_content_v1_DeleteContentRequest) => {
        await dir.delete(req.digest ?? '');
        return {};
      }),
      Status: unary(async (dir, req: containerd_services_content_v1_StatusRequest) => ({
        status: statusMessage(dir.status(req.ref ?? '')),
      })),
      ListStatuses: unary(async (dir) => ({ statuses: dir.statuses().map(statusMessage) })),
      Abort: unary(async (dir, req: containerd_services_content_v1_AbortRequest) => {
        await dir.abort(req.ref ?? '');
        return {};
      }),
      List: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        Promise.resolve()
          .then(async () => {
            const infos = await choose(call.metadata).list();
            for (let i = 0; i < infos.length; i += 100) {
              await send(call, { info: infos.slice(i, i + 100).map(infoMessage) });
            }
            call.end();
          })
          .catch((err: unknown) => fail(call, err));
      },
      Read: (call: grpc.ServerWritableStream<containerd_services_content_v1_ReadContentRequest, unknown>) => {
        readBlob(call, choose).catch((err: unknown) => fail(call, err));
      },
      Write: (
        call: grpc.ServerDuplexStream<
          containerd_services_content_v1_WriteContentRequest,
          containerd_services_content_v1_WriteContentResponse
        >,
      ) => {
        writeBlob(call, choose).then(
          () => call.end(),
          (err: unknown) => fail(call, err),
        );
      },
    },
  };
}

/**
 * Reads a call's messages one at a time, paused in between. (for-await would destroy the call when the
 * loop exits early, and a destroyed call can no longer send its status.) Undefined once it ends.
 */
function messageReader<T>(call: grpc.ServerDuplexStream<T, unknown>): () => Promise<T | undefined> {
  const queue: T[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const wakeUp = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  call.on('data', (message: T) => {
    queue.push(message);
    call.pause();
    wakeUp();
  });
  const end = () => {
    ended = true;
    wakeUp();
  };
  call.once('end', end);
  call.once('cancelled', end);
  return async () => {
    while (queue.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
    const message = queue.shift();
    if (queue.length === 0 && !ended) call.resume();
    return message;
  };
}

/** Ends a streaming call with the error's status (grpc-js sends it on 'error'; destroy() would not). */
function fail(call: { emit(event: 'error', err: Error): boolean }, err: unknown): void {
  call.emit('error', statusError(err));
}

/** Writes a message, waiting for the stream to drain when its buffer is full. */
function send(call: grpc.ServerWritableStream<unknown, unknown>, message: unknown): Promise<void> {
  return new Promise((resolve) => {
    if (call.cancelled || call.write(message)) {
      resolve();
      return;
    }
    // a cancelled call never drains
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      resolve();
    };
    call.once('drain', done);
    call.once('cancelled', done);
  });
}

async function readBlob(
  call: grpc.ServerWritableStream<containerd_services_content_v1_ReadContentRequest, unknown>,
  choose: (metadata: grpc.Metadata) => ContentDir,
): Promise<void> {
  const dir = choose(call.metadata);
  const { stream, start } = await dir.read(
    call.request.digest ?? '',
    num(call.request.offset),
    num(call.request.size),
  );
  const stop = () => stream.destroy();
  call.once('cancelled', stop);
  try {
    let offset = start;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (call.cancelled) return;
      await send(call as grpc.ServerWritableStream<unknown, unknown>, { offset, data: chunk });
      offset += chunk.length;
    }
    call.end();
  } finally {
    call.off('cancelled', stop);
    stream.destroy();
  }
}

/**
 * One Write stream, like containerd's content server: the first message names the ref (and maybe size
 * and digest); STAT answers the write's state, WRITE appends at the current offset (0 starts over),
 * COMMIT verifies and stores. A stream that ends without committing drops its write.
 */
async function writeBlob(
  call: grpc.ServerDuplexStream<
    containerd_services_content_v1_WriteContentRequest,
    containerd_services_content_v1_WriteContentResponse
  >,
  choose: (metadata: grpc.Metadata) => ContentDir,
): Promise<void> {
  const dir = choose(call.metadata);
  const next = messageReader<containerd_services_content_v1_WriteContentRequest>(call);
  let ingest: Ingest | undefined;
  let committed = false;
  try {
    for (let req = await next(); req; req = await next()) {
      const action = req.action ?? WRITE_STAT;
      if (!ingest) {
        ingest = await dir.openIngest(req.ref ?? '', num(req.total), req.expected ?? '');
      } else if (req.expected) {
        await dir.refuseExisting(req.expected);
      }
      if (req.expected) ingest.expected = req.expected;
      if (num(req.total) > 0) ingest.total = num(req.total);
      const response: containerd_services_content_v1_WriteContentResponse = { action };
      if (action === WRITE_STAT) {
        Object.assign(response, {
          started_at: timestamp(ingest.startedAt),
          updated_at: timestamp(ingest.updatedAt),
          offset: ingest.offset,
          total: ingest.total,
          digest: ingest.digest(),
        });
      } else if (action === WRITE_WRITE || action === WRITE_COMMIT) {
        const data = req.data ?? new Uint8Array();
        if (num(req.offset) > 0 || data.length > 0 || ingest.offset > 0)
          await ingest.write(num(req.offset), data);
        if (action === WRITE_COMMIT) {
          const size = ingest.offset;
          const started = ingest.startedAt;
          const digest = await ingest.commit(ingest.total, ingest.expected);
          committed = true;
          Object.assign(response, {
            started_at: timestamp(started),
            updated_at: timestamp(new Date()),
            offset: size,
            total: ingest.total,
            digest,
          });
        } else {
          Object.assign(response, { offset: ingest.offset, digest: ingest.digest() });
        }
      } else {
        throw new ContentError('invalid-argument', `unknown write action ${String(action)}`);
      }
      await send(call as unknown as grpc.ServerWritableStream<unknown, unknown>, response);
      if (committed) return;
    }
  } finally {
    if (ingest && !committed) await ingest.abort();
  }
}
