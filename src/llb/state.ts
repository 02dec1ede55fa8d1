/**
 * LLB states: immutable values chained fluently, like BuildKit's client/llb.
 *
 *   const base = image('python:3.11-slim');
 *   const built = base.run({ shell: 'pip install six' }).root();
 *   const def = built.marshal();
 *
 * A State is a filesystem (an op output, or scratch) plus the process settings later `run`s inherit:
 * env, working directory, user, platform, network and security mode.
 */
import type { pb_Platform } from '../gen/types.js';
import { type MarshalledDefinition, type MarshalOptions, marshalDefinition } from './definition.js';
import { ExecVertex, type RunOptions } from './exec.js';
import { FileActions, FileVertex } from './file.js';
import { DiffVertex, MergeVertex } from './merge.js';
import type { Output, StepOptions } from './vertex.js';

export const NetMode = { sandbox: 0, host: 1, none: 2 } as const;
export type NetworkMode = keyof typeof NetMode;
export type SecurityMode = 'sandbox' | 'insecure';

export interface ProcessSettings {
  readonly env: readonly (readonly [string, string])[];
  readonly cwd: string;
  readonly user: string | undefined;
  readonly platform: pb_Platform | undefined;
  readonly network: NetworkMode;
  readonly security: SecurityMode;
  readonly hostname: string | undefined;
}

const defaultSettings: ProcessSettings = {
  env: [],
  cwd: '/',
  user: undefined,
  platform: undefined,
  network: 'sandbox',
  security: 'sandbox',
  hostname: undefined,
};

/** Joins `path` onto `cwd` the way a shell would: absolute paths win, `..` and `.` are resolved. */
export function resolvePath(cwd: string, path: string): string {
  const parts = (path.startsWith('/') ? path : `${cwd}/${path}`).split('/');
  const out: string[] = [];
  for (const part of parts) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  const joined = `/${out.join('/')}`;
  return path.endsWith('/') && joined !== '/' ? `${joined}/` : joined;
}

export class State {
  /** the filesystem; undefined is scratch (an empty filesystem) */
  readonly output: Output | undefined;
  readonly settings: ProcessSettings;

  constructor(output: Output | undefined, settings: ProcessSettings = defaultSettings) {
    this.output = output;
    this.settings = settings;
  }

  private with(patch: Partial<ProcessSettings>): State {
    return new State(this.output, { ...this.settings, ...patch });
  }

  /** The same settings on another filesystem. */
  withOutput(output: Output | undefined): State {
    return new State(output, this.settings);
  }

  /** Sets (or replaces, keeping its position) an environment variable. */
  withEnv(name: string, value: string): State {
    const env = this.settings.env.some(([k]) => k === name)
      ? this.settings.env.map(([k, v]) => (k === name ? ([k, value] as const) : ([k, v] as const)))
      : [...this.settings.env, [name, value] as const];
    return this.with({ env });
  }

  withoutEnv(name: string): State {
    return this.with({ env: this.settings.env.filter(([k]) => k !== name) });
  }

  getEnv(name: string): string | undefined {
    return this.settings.env.find(([k]) => k === name)?.[1];
  }

  /** Changes the working directory; relative paths resolve against the current one. */
  withCwd(path: string): State {
    return this.with({ cwd: resolvePath(this.settings.cwd, path) });
  }

  withUser(user: string): State {
    return this.with({ user });
  }

  withPlatform(platform: pb_Platform): State {
    return this.with({ platform });
  }

  withNetwork(network: NetworkMode): State {
    return this.with({ network });
  }

  withSecurity(security: SecurityMode): State {
    return this.with({ security });
  }

  withHostname(hostname: string): State {
    return this.with({ hostname });
  }

  /** Runs a process on this filesystem. The result's `root()` is the filesystem after it ran. */
  run(options: RunOptions): ExecState {
    return new ExecState(new ExecVertex(this, options), this.settings);
  }

  /** Applies a chain of file actions (mkdir, mkfile, rm, copy, symlink) in one step. */
  file(actions: FileActions, step?: StepOptions): State {
    if (actions.actions.length === 0) return this;
    return this.withOutput({ vertex: new FileVertex(this, actions, step), index: 0 });
  }

  mkdir(path: string, options?: Parameters<FileActions['mkdir']>[1], step?: StepOptions): State {
    return this.file(new FileActions(this.settings.cwd).mkdir(path, options), step);
  }

  mkfile(
    path: string,
    data: string | Uint8Array,
    options?: Parameters<FileActions['mkfile']>[2],
    step?: StepOptions,
  ): State {
    return this.file(new FileActions(this.settings.cwd).mkfile(path, data, options), step);
  }

  rm(path: string, options?: Parameters<FileActions['rm']>[1], step?: StepOptions): State {
    return this.file(new FileActions(this.settings.cwd).rm(path, options), step);
  }

  copy(
    from: State,
    src: string,
    dest: string,
    options?: Parameters<FileActions['copy']>[3],
    step?: StepOptions,
  ): State {
    return this.file(new FileActions(this.settings.cwd).copy(from, src, dest, options), step);
  }

  symlink(
    target: string,
    linkPath: string,
    options?: Parameters<FileActions['symlink']>[2],
    step?: StepOptions,
  ) {
    return this.file(new FileActions(this.settings.cwd).symlink(target, linkPath, options), step);
  }

  /** Marshals the graph that produces this state's filesystem. */
  marshal(options: MarshalOptions = {}): MarshalledDefinition {
    if (!this.output) throw new Error('cannot marshal scratch: an empty filesystem has no ops');
    const platform = options.platform ?? this.settings.platform;
    return marshalDefinition(this.output, platform ? { ...options, platform } : options);
  }
}

/** The result of `State.run`: the root filesystem and every writable mount after the process ran. */
export class ExecState extends State {
  private readonly exec: ExecVertex;

  constructor(exec: ExecVertex, settings: ProcessSettings) {
    super({ vertex: exec, index: exec.outputIndexOf('/') }, settings);
    this.exec = exec;
  }

  root(): State {
    return new State(this.output, this.settings);
  }

  /** The filesystem of a writable bind mount after the process ran. */
  mount(dest: string): State {
    return new State({ vertex: this.exec, index: this.exec.outputIndexOf(dest) }, this.settings);
  }
}

/** Layers states on top of each other (later ones win), without copying. Scratch states are skipped. */
export function merge(states: readonly State[], step?: StepOptions): State {
  const outputs = states.flatMap((s) => (s.output ? [s.output] : []));
  const first = states[0] ?? new State(undefined);
  if (outputs.length === 0) return first.withOutput(undefined);
  if (outputs.length === 1) return first.withOutput(outputs[0]);
  return first.withOutput({ vertex: new MergeVertex(outputs, step), index: 0 });
}

/** The changes that turn `lower` into `upper`, as a filesystem of their own. */
export function diff(lower: State, upper: State, step?: StepOptions): State {
  return upper.withOutput({ vertex: new DiffVertex(lower.output, upper.output, step), index: 0 });
}

/** An empty filesystem. */
export function scratch(): State {
  return new State(undefined);
}
