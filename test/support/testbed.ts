import { fileURLToPath } from 'node:url';
import { exec, execOk } from './exec.js';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const testbedScript = `${repoRoot}scripts/testbed`;

/** What `scripts/testbed env` exports, plus an environment for child processes that uses it. */
export interface Testbed {
  readonly buildkitHost: string;
  readonly registry: string;
  readonly authRegistry: string;
  readonly authUser: string;
  readonly authPassword: string;
  /** the registry with token (Bearer) auth; its token server takes authUser / authPassword */
  readonly tokenRegistry: string;
  readonly stateDir: string;
  /** host CA bundle for TLS-intercepting proxies, when the host has one */
  readonly caCert: string | undefined;
  /** process.env with the test bed's variables and tools on PATH */
  readonly env: NodeJS.ProcessEnv;
}

/** Parses the `export NAME=value` lines that `scripts/testbed env` prints. */
export function parseExports(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) vars.set(match[1], match[2]);
  }
  return vars;
}

function required(vars: Map<string, string>, name: string): string {
  const value = vars.get(name);
  if (!value) throw new Error(`scripts/testbed env did not export ${name}`);
  return value;
}

/** Runs `scripts/testbed up` (cheap when already up) and returns how to reach the test bed. */
export async function ensureTestbed(): Promise<Testbed> {
  const up = await exec('bash', [testbedScript, 'up']);
  if (up.code !== 0) throw new Error(`scripts/testbed up failed:\n${up.stderr}`);
  const vars = parseExports((await execOk('bash', [testbedScript, 'env'])).stdout);
  const path = required(vars, 'PATH').replace('$PATH', process.env.PATH ?? '');
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [name, value] of vars) env[name] = value;
  env.PATH = path;
  return {
    buildkitHost: required(vars, 'BUILDKIT_HOST'),
    registry: required(vars, 'COG_TEST_REGISTRY'),
    authRegistry: required(vars, 'COG_TEST_AUTH_REGISTRY'),
    authUser: required(vars, 'COG_TEST_AUTH_USER'),
    authPassword: required(vars, 'COG_TEST_AUTH_PASSWORD'),
    tokenRegistry: required(vars, 'COG_TEST_TOKEN_REGISTRY'),
    stateDir: required(vars, 'COG_TESTBED_DIR'),
    caCert: vars.get('COG_CA_CERT'),
    env,
  };
}

/** Runs the test bed script with a sub-command, in the test bed's environment. */
export function testbedCommand(command: 'up' | 'down' | 'env' | 'status') {
  return exec('bash', [testbedScript, command]);
}
