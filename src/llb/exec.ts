/** `run`: an ExecOp — a process with a root filesystem and mounts. */
import type { pb_ExecOp, pb_Mount, pb_OpMetadata } from '../gen/types.js';
import type { ProcessSettings, State } from './state.js';
import { resolvePath } from './state.js';
import {
  type MarshalContext,
  type MarshalledVertex,
  type Output,
  type StepOptions,
  type Vertex,
  InputList,
  stepMetadata,
} from './vertex.js';

export type CacheSharing = 'shared' | 'private' | 'locked';
const cacheSharing: Record<CacheSharing, 0 | 1 | 2> = { shared: 0, private: 1, locked: 2 };

export type Mount =
  /** another state's filesystem at `dest`; writable unless `readonly` (its result is `ExecState.mount(dest)`) */
  | {
      readonly type: 'bind';
      readonly dest: string;
      readonly source: State;
      readonly selector?: string;
      readonly readonly?: boolean;
    }
  /** a persistent cache directory shared between builds, keyed by `id` */
  | {
      readonly type: 'cache';
      readonly dest: string;
      readonly id: string;
      readonly sharing?: CacheSharing;
      readonly seed?: State;
    }
  /** an in-memory filesystem; `size` in bytes */
  | { readonly type: 'tmpfs'; readonly dest: string; readonly size?: number }
  /** a build secret served by the client's session; never stored in a layer */
  | {
      readonly type: 'secret';
      readonly id: string;
      readonly dest?: string;
      readonly mode?: number;
      readonly uid?: number;
      readonly gid?: number;
      readonly required?: boolean;
    }
  /** the client's SSH agent socket */
  | {
      readonly type: 'ssh';
      readonly id?: string;
      readonly dest?: string;
      readonly mode?: number;
      readonly uid?: number;
      readonly gid?: number;
      readonly required?: boolean;
    };

export interface RunOptions extends StepOptions {
  /** argv; or give `shell` for `/bin/sh -c <shell>` */
  readonly args?: readonly string[];
  readonly shell?: string;
  /** extra environment for this process only */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly user?: string;
  readonly mounts?: readonly Mount[];
  /** environment variables filled from build secrets: name → secret id */
  readonly secretEnv?: Readonly<Record<string, { readonly id: string; readonly required?: boolean }>>;
  readonly network?: ProcessSettings['network'];
  readonly security?: ProcessSettings['security'];
  readonly hostname?: string;
  readonly extraHosts?: Readonly<Record<string, string>>;
  readonly validExitCodes?: readonly number[];
  /** CDI devices for the process, e.g. `nvidia.com/gpu=all` (optional ones may be missing on the worker) */
  readonly devices?: readonly { readonly name: string; readonly optional?: boolean }[];
}

const netModes = { sandbox: 0, host: 1, none: 2 } as const;

interface PlannedMount {
  readonly dest: string;
  readonly input: Output | undefined;
  readonly mount: Omit<pb_Mount, 'input' | 'output' | 'dest'>;
  readonly hasOutput: boolean;
}

export class ExecVertex implements Vertex {
  readonly kind = 'exec';
  private readonly regular: readonly PlannedMount[];
  private readonly secretMounts: readonly pb_Mount[];

  constructor(
    private readonly base: State,
    private readonly options: RunOptions,
  ) {
    if (!options.args?.length && !options.shell) throw new Error('run: give `args` or `shell`');
    const cwd = this.cwd();
    const root: PlannedMount = { dest: '/', input: base.output, mount: {}, hasOutput: true };
    const regular: PlannedMount[] = [root];
    const secrets: pb_Mount[] = [];
    let sshCount = 0;
    for (const m of options.mounts ?? []) {
      switch (m.type) {
        case 'bind':
          regular.push({
            dest: resolvePath(cwd, m.dest),
            input: m.source.output,
            mount: {
              ...(m.selector ? { selector: m.selector } : {}),
              ...(m.readonly ? { readonly: true } : {}),
            },
            hasOutput: !m.readonly,
          });
          break;
        case 'cache':
          regular.push({
            dest: resolvePath(cwd, m.dest),
            input: m.seed?.output,
            mount: { mountType: 3, cacheOpt: { ID: m.id, sharing: cacheSharing[m.sharing ?? 'shared'] } },
            hasOutput: false,
          });
          break;
        case 'tmpfs':
          regular.push({
            dest: resolvePath(cwd, m.dest),
            input: undefined,
            mount: { mountType: 4, TmpfsOpt: m.size ? { size: m.size } : {} },
            hasOutput: false,
          });
          break;
        case 'secret': {
          const dest = resolvePath(cwd, m.dest ?? `/run/secrets/${m.id}`);
          secrets.push({
            input: -1,
            dest,
            mountType: 1,
            secretOpt: {
              ID: m.id,
              uid: m.uid ?? 0,
              gid: m.gid ?? 0,
              mode: m.mode ?? 0o400,
              optional: !m.required,
            },
          });
          break;
        }
        case 'ssh': {
          const dest = m.dest ?? `/run/buildkit/ssh_agent.${sshCount++}`;
          secrets.push({
            input: -1,
            dest,
            mountType: 2,
            SSHOpt: {
              ID: m.id ?? 'default',
              uid: m.uid ?? 0,
              gid: m.gid ?? 0,
              mode: m.mode ?? 0o600,
              optional: !m.required,
            },
          });
          break;
        }
      }
    }
    const dests = new Set<string>();
    for (const m of regular) {
      if (dests.has(m.dest)) throw new Error(`run: two mounts at ${m.dest}`);
      dests.add(m.dest);
    }
    this.regular = regular.sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
    this.secretMounts = secrets;
  }

  private cwd(): string {
    return this.options.cwd ? resolvePath(this.base.settings.cwd, this.options.cwd) : this.base.settings.cwd;
  }

  /** Output index of the mount at `dest` (only writable bind mounts, including "/", have one). */
  outputIndexOf(dest: string): number {
    let index = 0;
    for (const m of this.regular) {
      if (m.dest === dest) {
        if (!m.hasOutput) throw new Error(`run: the mount at ${dest} is not a writable bind mount`);
        return index;
      }
      if (m.hasOutput) index++;
    }
    throw new Error(`run: no mount at ${dest}`);
  }

  marshal(ctx: MarshalContext): MarshalledVertex {
    const settings = this.base.settings;
    const inputList = new InputList();
    const inputs = inputList.outputs;
    const inputIndex = (output: Output | undefined) => inputList.indexOf(output);
    let nextOutput = 0;
    const mounts: pb_Mount[] = this.regular.map((m) => ({
      input: inputIndex(m.input),
      dest: m.dest,
      output: m.hasOutput ? nextOutput++ : -1,
      ...m.mount,
    }));
    mounts.push(...this.secretMounts);

    const env = new Map(settings.env);
    for (const [k, v] of Object.entries(this.options.env ?? {})) env.set(k, v);
    const args = this.options.args?.length
      ? [...this.options.args]
      : ['/bin/sh', '-c', this.options.shell as string];
    const user = this.options.user ?? settings.user;
    const hostname = this.options.hostname ?? settings.hostname;
    const exec: pb_ExecOp = {
      meta: {
        args,
        env: [...env].map(([k, v]) => `${k}=${v}`),
        cwd: this.cwd(),
        ...(user ? { user } : {}),
        ...(hostname ? { hostname } : {}),
        ...(this.options.extraHosts
          ? { extraHosts: Object.entries(this.options.extraHosts).map(([Host, IP]) => ({ Host, IP })) }
          : {}),
        removeMountStubsRecursive: true,
        ...(this.options.validExitCodes ? { validExitCodes: [...this.options.validExitCodes] } : {}),
      },
      mounts,
      network: netModes[this.options.network ?? settings.network],
      security: (this.options.security ?? settings.security) === 'insecure' ? 1 : 0,
      secretenv: Object.entries(this.options.secretEnv ?? {}).map(([name, s]) => ({
        ID: s.id,
        name,
        optional: !s.required,
      })),
      ...(this.options.devices?.length
        ? { cdiDevices: this.options.devices.map((d) => ({ name: d.name, optional: d.optional === true })) }
        : {}),
    };
    const metadata: pb_OpMetadata = stepMetadata(this.options, []);
    return {
      op: { exec, platform: settings.platform ?? ctx.platform, constraints: {} },
      inputs,
      metadata,
    };
  }
}
