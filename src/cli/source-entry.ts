/**
 * The source-only answer of `cog build`, run before the whole CLI is loaded (see entry.ts): bundled
 * apart as dist/cog-source.cjs, it carries the config loader, the planner and the layer writer, but
 * neither yargs nor a BuildKit client. The arguments are the ones the recorded build parsed (same
 * command line, same key), so nothing is parsed here. Everything it would print is held back until
 * the build is answered: when it is not (no record, something below the source changed, any error),
 * the full CLI builds and says everything itself, once.
 */
import { readSourceRecord, sourceRecordsDir } from '../build/source-record.js';
import { ImageStore, imageStoreDir } from '../image/store.js';
import { fingerprintBuild, startRecording } from './build-recording.js';
import type { CommandIo } from './debug-solve.js';
import { prepareBuild, projectSharedKey, warningLine } from './prepare-build.js';
import type { PushTarget } from '../build/source-rebuild.js';
import { buildSourceOnly, closeUnused, openPush, sourceOnlyAllowed } from './source-only.js';
import { buildEnvironment, buildRecordKey } from './up-to-date.js';
import { InterruptedError } from './interrupt.js';
import { resolveProgressMode } from '../progress/mode.js';

/** A stderr that keeps what is written until `flush`. */
function heldStderr(target: CommandIo['stderr']) {
  const chunks: (string | Uint8Array)[] = [];
  const stream = {
    write(chunk: string | Uint8Array) {
      chunks.push(chunk);
      return true;
    },
    isTTY: target.isTTY,
    columns: target.columns,
  } as unknown as CommandIo['stderr'];
  return { stream, flush: () => chunks.forEach((chunk) => target.write(chunk)) };
}

/**
 * Answers `cog build ARGV` source-only and resolves to true; false means the full CLI must build.
 * Rejects with InterruptedError on Ctrl-C (the command ends: 130).
 */
export async function sourceOnlyBuild(argv: readonly string[], io: CommandIo, cwd: string): Promise<boolean> {
  let push: Promise<PushTarget> | undefined;
  try {
    const env = buildEnvironment(argv, io.env);
    const key = buildRecordKey(argv, cwd, env);
    if (!key) return false;
    const record = readSourceRecord(sourceRecordsDir(env), key);
    const args = record?.args;
    if (!record || !args) return false;
    // the registry's round trips before the pushes run while the build is prepared
    if (args.push && record.output.kind === 'push') {
      push = openPush(record.imageName, env);
      push.catch(() => undefined);
    }
    const held = heldStderr(io.stderr);
    const heldIo: CommandIo = { ...io, env, stderr: held.stream };
    const recording = startRecording(args, heldIo, cwd);
    if (!recording || recording.key !== key) return false;
    const warn = (message: string) => {
      const line = warningLine(message);
      recording.notes.push(line);
      held.stream.write(line);
    };
    const prepared = await prepareBuild(args, heldIo, cwd, warn);
    if (!sourceOnlyAllowed(args, prepared)) return false;
    const store = new ImageStore(imageStoreDir(env));
    const answered = await buildSourceOnly({
      recording,
      recordInputs: fingerprintBuild(recording, prepared, args),
      prepared,
      sharedKeyHint: projectSharedKey(prepared.loaded.projectDir),
      store,
      toStore: !args.push,
      record,
      ...(push ? { push } : {}),
      io: heldIo,
      // Ctrl-C and the layer's progress are said at once, not held back
      live: { stream: io.stderr, mode: resolveProgressMode(args.progress, env, io.stderr.isTTY === true) },
    });
    if (!answered) return false;
    held.flush();
    return true;
  } catch (err) {
    if (err instanceof InterruptedError) throw err;
    return false;
  } finally {
    // a target the rebuild never took (it closes its own)
    await closeUnused(push);
  }
}
