/**
 * Two Cog servers on one network namespace can take each other's worker sockets. coglet names them
 * `coglet-PID-N` after the server's pid, as Linux abstract unix sockets, which are per network
 * namespace (there is no option to name them otherwise, coglet 0.23). Containers on the daemon host's
 * network (`cog serve`, the build's smoke probe and `cog run`) share that namespace, and each one's server
 * starts at the same small pid in its own pid namespace: a server whose worker starts while another's is
 * starting fails setup with "failed to create transport: Address already in use" and answers 503.
 *
 * The way out, in Python for the processes that start a server inside the container: start it at a
 * random pid (threads that end at once move the next pid on), and when it fails that way all the same,
 * stop it and start it again at another one. Any other setup failure is left as it is.
 */

import { serverOpenerPython } from './server-opener.js';

/** Python: `move_pid()`, `stop_server(server)`, `socket_clash(health)` and `MAX_SOCKET_RESTARTS`, for a script to include. */
export const workerSocketPython = String.raw`
MAX_SOCKET_RESTARTS = 5
def move_pid():
    # a thread takes the next pid as its id, and is far cheaper to start than a process (a fork of
    # Python took 1-10 ms)
    import random, threading
    for _ in range(random.randrange(1, 500)):
        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join()
def stop_server(server):
    # SIGTERM, and SIGKILL when the server has not ended 10 s later
    import subprocess
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
def socket_clash(health):
    # /health-check's answer says setup failed as another server's worker sockets had its sockets' names
    if not isinstance(health, dict) or health.get("status") != "SETUP_FAILED":
        return False
    logs = (health.get("setup") or {}).get("logs") or ""
    return "failed to create transport" in logs and "Address already in use" in logs
`;

/**
 * The launcher `cog serve` runs instead of the server: `python -c LAUNCHER HEALTH_URL SERVER_ARGS…`.
 * It starts the server (its output is the launcher's) at a moved pid, watches /health-check until
 * setup ends, starts it again on a socket clash, passes the signals it gets on to the server and exits
 * as the server did.
 */
const launcher = String.raw`
import json, os, signal, subprocess, sys, time, urllib.error
${workerSocketPython}
${serverOpenerPython}
health_url = sys.argv[1]
server_args = sys.argv[2:]
server = None
stopping = False
def pass_on(signum, frame):
    global stopping
    stopping = True
    if server is not None and server.poll() is None:
        server.send_signal(signum)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, pass_on)
def health():
    try:
        with to_server.open(health_url, timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        try:
            return json.loads(e.read())
        except Exception:
            return None
    except Exception:
        return None
def start():
    # the server is set before the signal handler's flag is read: a signal never misses it
    global server
    move_pid()
    server = subprocess.Popen(server_args)
    if stopping:
        server.terminate()
start()
restarts = 0
watching = True
while server.poll() is None:
    if not watching or stopping:
        server.wait()
        continue
    answer = health()
    if socket_clash(answer) and restarts < MAX_SOCKET_RESTARTS and not stopping:
        restarts += 1
        sys.stderr.write("cog: another Cog server on this network had the worker sockets' names; starting the server again at another pid\n")
        sys.stderr.flush()
        stop_server(server)
        if not stopping:
            start()
        continue
    if isinstance(answer, dict) and answer.get("status") in ("READY", "SETUP_FAILED", "DEFUNCT"):
        watching = False
        continue
    time.sleep(0.1)
code = server.returncode
if code < 0:
    # end as the server did (SIGKILL cannot be handled: it is sent as it is), else as a shell says it
    try:
        signal.signal(-code, signal.SIG_DFL)
    except (OSError, ValueError):
        pass
    os.kill(os.getpid(), -code)
    sys.exit(128 - code)
sys.exit(code)
`;

/** The command line that runs `serverArgs` through the launcher; the server answers at `healthUrl`. */
export function launchedServerArgs(serverArgs: readonly string[], healthUrl: string): string[] {
  return ['python', '-c', launcher, healthUrl, ...serverArgs];
}

/** Where a server bound to `host` (an IPv4 address) and `port` answers /health-check from inside. */
export function healthCheckUrl(host: string, port: number): string {
  return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/health-check`;
}
