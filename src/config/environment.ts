// cog.yaml `environment`: "NAME=value" strings → a map, refusing names the runtime owns.

const ENTRY = /^[A-Za-z_][A-Za-z0-9_]*=.*$/;

/** Exact names, or prefixes when they end in "*". */
export const RESERVED_ENV = [
  'PATH',
  'LD_LIBRARY_PATH',
  'PYTHONPATH',
  'VIRTUAL_ENV',
  'PYTHONUNBUFFERED',
  'R8_*',
  'REPLICATE_*',
  'LIBRARY_PATH',
  'CUDA_*',
  'NVIDIA_*',
  'NV_*',
  'PGET_*',
  'HF_ENDPOINT',
  'HF_HUB_ENABLE_HF_TRANSFER',
  'KUBERNETES_*',
] as const;

export function isReservedEnvName(name: string): boolean {
  return RESERVED_ENV.some((r) => (r.endsWith('*') ? name.startsWith(r.slice(0, -1)) : name === r));
}

export interface EnvironmentResult {
  env: Record<string, string>;
  /** index into the list and what is wrong with that entry */
  errors: { index: number; value: string; message: string }[];
}

/** Split each entry on its first "="; check the name's form, duplicates and the reserved list. */
export function parseEnvironment(entries: readonly string[]): EnvironmentResult {
  const env: Record<string, string> = {};
  const errors: EnvironmentResult['errors'] = [];
  entries.forEach((entry, index) => {
    if (!ENTRY.test(entry)) {
      errors.push({
        index,
        value: entry,
        message:
          'must be NAME=value, with a name of letters, digits and underscores not starting with a digit',
      });
      return;
    }
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq);
    const value = entry.slice(eq + 1);
    if (Object.hasOwn(env, name)) {
      errors.push({ index, value: entry, message: `environment variable "${name}" is already defined` });
      return;
    }
    if (isReservedEnvName(name)) {
      errors.push({
        index,
        value: entry,
        message: `environment variable "${name}" is not allowed: reserved for internal use`,
      });
      return;
    }
    env[name] = value;
  });
  return { env, errors };
}
