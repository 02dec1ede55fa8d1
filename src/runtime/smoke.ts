/**
 * A smoke test of a built model without Docker: a BuildKit exec on the image starts the Cog HTTP
 * server as the image would (its env, /src, `python -m cog.server.http`), waits for /health-check to
 * say READY, optionally runs one prediction, and writes what it saw to /out/smoke.json.
 */
import { type State, scratch } from '../llb/index.js';
import { readyLine } from './ready-signal.js';
import { serverOpenerPython } from './server-opener.js';
import { workerSocketPython } from './worker-sockets.js';

export interface SmokeOptions {
  /** the port the server listens on inside the exec; 0 (default) picks a free one */
  readonly port?: number;
  /** seconds to wait for READY */
  readonly setupTimeout?: number;
  /** a prediction input to POST once READY */
  readonly input?: Readonly<Record<string, unknown>>;
  /** the mode: `predict` (default) or `train` */
  readonly mode?: 'predict' | 'train';
  /** a filesystem holding /request.json (the whole request body's `input`), for inputs too big for env */
  readonly inputFrom?: State;
  /** extra environment for the server (`cog predict -e`) */
  readonly env?: Readonly<Record<string, string>>;
  /** the step's name in progress output */
  readonly name?: string;
  /** CDI devices (GPUs) for the server, see gpu.ts */
  readonly devices?: readonly string[];
  /**
   * the id of a session secret holding a Replicate API token, sent as the request's
   * `context.replicate_api_token` (`cog predict --use-replicate-token`); mounted, never in env or LLB
   */
  readonly replicateTokenSecret?: string;
  /** where the server starts, as `docker run` would (default /src, where cog builds put the model) */
  readonly cwd?: string;
  /** write readyLine on the probe's stdout once the server is READY (see ready-signal.ts) */
  readonly announceReady?: boolean;
}

/** Where the probe finds the Replicate API token secret. */
const tokenPath = '/run/secrets/cog-replicate-api-token';

export interface SmokeReport {
  readonly health: { status?: string; setup?: { status?: string; logs?: string } } | null;
  readonly prediction?: { status?: string; output?: unknown; error?: unknown } | null;
  readonly openapi?: unknown;
  readonly error?: string;
  /** the server's last lines of output (stdout and stderr), when it did not become READY */
  readonly output_tail?: readonly string[];
  /** epoch seconds inside the exec: the probe started, the server said READY, the request was answered */
  readonly timings?: { probe_started?: number; ready?: number; answered?: number };
}

const probe = String.raw`
import json, os, subprocess, sys, time, urllib.error, urllib.request
probe_started = time.time()
import socket
port = os.environ["COG_SMOKE_PORT"]
if port == "0":
    # a free port: the exec may share the host's network with other builds
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
mode = os.environ.get("COG_SMOKE_MODE", "predict")
base = "http://127.0.0.1:" + port
# coglet names its worker sockets (abstract unix sockets) after its pid: execs that share the host's
# network namespace (buildkitd with host networking) each start at pid 1, so two at once can collide.
# Then the server is started again at a random pid (a clash is rare: retrying is cheaper than always
# moving the pid). See worker-sockets.ts.
${workerSocketPython}
# requests to the server go straight there, whatever HTTP(S)_PROXY the image's env sets (server-opener.ts)
${serverOpenerPython}
args = [sys.executable, "-m", "cog.server.http"] + (["--x-mode", "train"] if mode == "train" else [])
# the server's output goes on to the build's log as it comes, and its last lines are kept for the report:
# when the server does not become ready or the prediction fails, they say why in every progress mode
# (the quiet one included)
import collections, threading
tail = collections.deque(maxlen=20)
relays = []
def relay(stream):
    for line in iter(lambda: stream.readline(65536), b""):
        sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()
        tail.append(line)
def start_server():
    server = subprocess.Popen(args, env=dict(os.environ, PORT=port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    thread = threading.Thread(target=relay, args=(server.stdout,), daemon=True)
    thread.start()
    relays.append(thread)
    return server
server = start_server()
restarts = 0
report = {"health": None, "timings": {"probe_started": probe_started}}
answered_tail = None
def get(path):
    with to_server.open(base + path, timeout=5) as r:
        return json.load(r)
deadline = time.time() + float(os.environ.get("COG_SMOKE_TIMEOUT", "300"))
try:
    while time.time() < deadline:
        if server.poll() is not None:
            report["error"] = "the server exited with code %d" % server.returncode
            break
        try:
            report["health"] = get("/health-check")
            if socket_clash(report["health"]) and restarts < MAX_SOCKET_RESTARTS:
                restarts += 1
                stop_server(server)
                move_pid()
                server = start_server()
                continue
            if report["health"].get("status") in ("READY", "SETUP_FAILED", "DEFUNCT"):
                report["timings"]["ready"] = time.time()
                break
        except Exception:
            pass
        time.sleep(0.05)
    else:
        report["error"] = "no READY within the timeout"
    if report["health"] and report["health"].get("status") == "READY":
        if "COG_SMOKE_ANNOUNCE_READY" in os.environ:
            sys.stdout.write(${JSON.stringify(readyLine)})
            sys.stdout.flush()
        try:
            report["openapi"] = get("/openapi.json")
        except Exception:
            # an image built without a schema (--skip-schema-validation): coglet answers 503
            report["openapi"] = None
        given = None
        if "COG_SMOKE_INPUT_FILE" in os.environ:
            with open(os.environ["COG_SMOKE_INPUT_FILE"]) as f:
                given = json.load(f)
        elif "COG_SMOKE_INPUT" in os.environ:
            given = json.loads(os.environ["COG_SMOKE_INPUT"])
        if given is not None:
            request = {"input": given}
            if "COG_SMOKE_TOKEN_FILE" in os.environ:
                with open(os.environ["COG_SMOKE_TOKEN_FILE"]) as f:
                    request["context"] = {"replicate_api_token": f.read()}
            body = json.dumps(request).encode()
            path = "/trainings" if mode == "train" else "/predictions"
            req = urllib.request.Request(base + path, data=body, headers={"Content-Type": "application/json"})
            try:
                with to_server.open(req, timeout=300) as r:
                    report["prediction"] = json.load(r)
                report["timings"]["answered"] = time.time()
                # coglet frees the prediction's slot just after it answers; stopped before that, it logs
                # ERROR lines (a permit dropped, a slot poisoned): wait (up to 2 s) until it is READY again
                settle_until = time.time() + 2
                while time.time() < settle_until:
                    try:
                        if get("/health-check").get("status") == "READY":
                            break
                    except Exception:
                        break
                    time.sleep(0.02)
                # the output up to the answer (stopping the server adds lines of its own), from where
                # coglet says the prediction started when it does
                answered_tail = list(tail)
                starts = [i for i, line in enumerate(answered_tail) if b"Starting prediction" in line]
                if starts:
                    answered_tail = answered_tail[starts[-1]:]
            except urllib.error.HTTPError as e:
                report["prediction"] = {"status": "http %d" % e.code, "error": e.read().decode()}
finally:
    stop_server(server)
# kept too when the prediction failed: what the model printed says why
failed = report.get("prediction") is not None and report["prediction"].get("status") != "succeeded"
if failed or not (report["health"] and report["health"].get("status") == "READY"):
    # the rest of the output, unless a child of the server still holds the pipe open
    for thread in relays:
        thread.join(2)
    # a line as a terminal shows it: what follows its last carriage return, at most 1000 characters
    kept = answered_tail if failed and answered_tail is not None else list(tail)
    lines = [line.decode("utf-8", "replace").rstrip("\r\n").split("\r")[-1][-1000:] for line in kept]
    report["output_tail"] = lines
with open("/out/smoke.json", "w") as f:
    json.dump(report, f)
`;

/** Where the probe script is mounted: run from a file, so a failure's message names a short command. */
const probeDir = '/cog-smoke';

/**
 * The cache records a probe's exec leaves (BuildKit names a record after the mount and the command):
 * its /out (the report, a run's output files) and its root filesystem's changes. Never reused, as the
 * probe ignores the cache, so a run removes them once read (see forgetRunRecords).
 */
export const probeRecordDescriptions: readonly string[] = ['/out', '/'].map(
  (mount) => `mount ${mount} from exec python ${probeDir}/probe.py`,
);

/** Whether `err` is the probe's own process failing (it could not start, or died), not the model's. */
export function isProbeFailure(err: unknown): boolean {
  return err instanceof Error && err.message.includes(`"python ${probeDir}/probe.py" did not complete`);
}

/** The state whose /smoke.json holds the report. Never cached: a smoke test must really run. */
export function smokeTest(model: State, options: SmokeOptions): State {
  const probeFile = scratch().mkfile(
    '/probe.py',
    probe,
    { mode: 0o444, time: 0 },
    { name: '[internal] smoke test probe' },
  );
  return model
    .run({
      args: ['python', `${probeDir}/probe.py`],
      env: {
        ...(options.env ?? {}),
        COG_SMOKE_PORT: String(options.port ?? 0),
        COG_SMOKE_MODE: options.mode ?? 'predict',
        COG_SMOKE_TIMEOUT: String(options.setupTimeout ?? 300),
        ...(options.input ? { COG_SMOKE_INPUT: JSON.stringify(options.input) } : {}),
        ...(options.inputFrom ? { COG_SMOKE_INPUT_FILE: '/cog-input/request.json' } : {}),
        ...(options.replicateTokenSecret ? { COG_SMOKE_TOKEN_FILE: tokenPath } : {}),
        ...(options.announceReady ? { COG_SMOKE_ANNOUNCE_READY: '1' } : {}),
      },
      cwd: options.cwd ?? '/src',
      mounts: [
        { type: 'bind', dest: '/out', source: scratch() },
        { type: 'bind', dest: probeDir, source: probeFile, readonly: true },
        ...(options.inputFrom
          ? [{ type: 'bind' as const, dest: '/cog-input', source: options.inputFrom, readonly: true }]
          : []),
        ...(options.replicateTokenSecret
          ? [{ type: 'secret' as const, id: options.replicateTokenSecret, dest: tokenPath, required: true }]
          : []),
      ],
      ignoreCache: true,
      ...(options.devices?.length ? { devices: options.devices.map((name) => ({ name })) } : {}),
      name: options.name ?? `smoke test: /health-check${options.input ? ' and one prediction' : ''}`,
    })
    .mount('/out');
}
