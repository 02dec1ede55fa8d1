/** File actions (mkdir, mkfile, rm, copy, symlink) chained into one FileOp, run inside buildkitd. */
import type { Int64, pb_ChownOpt, pb_FileAction, pb_UserOpt } from '../gen/types.js';
import type { State } from './state.js';
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

/** A user or group by name (looked up in the target's /etc/passwd, /etc/group) or by number. */
export type Owner = { readonly user?: string | number; readonly group?: string | number };

export interface MkdirOptions {
  readonly mode?: number;
  readonly parents?: boolean;
  readonly owner?: Owner;
  /** modification time, ms since the epoch */
  readonly time?: number;
}
export interface MkfileOptions {
  readonly mode?: number;
  readonly owner?: Owner;
  readonly time?: number;
}
export interface RmOptions {
  readonly allowNotFound?: boolean;
  readonly allowWildcard?: boolean;
}
export interface CopyOptions {
  readonly owner?: Owner;
  /** numeric mode, or a symbolic one like "u+x" */
  readonly mode?: number | string;
  readonly followSymlinks?: boolean;
  /** copy a directory's contents rather than the directory itself */
  readonly contentsOnly?: boolean;
  readonly createDestPath?: boolean;
  readonly allowWildcard?: boolean;
  readonly allowEmptyWildcard?: boolean;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly replaceExisting?: boolean;
  readonly time?: number;
  /** unpack archives the way Dockerfile ADD does */
  readonly unpackArchives?: boolean;
}
export interface SymlinkOptions {
  readonly owner?: Owner;
  readonly time?: number;
}

type Action =
  | { readonly kind: 'mkdir'; readonly path: string; readonly options: MkdirOptions }
  | {
      readonly kind: 'mkfile';
      readonly path: string;
      readonly data: Uint8Array;
      readonly options: MkfileOptions;
    }
  | { readonly kind: 'rm'; readonly path: string; readonly options: RmOptions }
  | {
      readonly kind: 'copy';
      readonly from: State;
      readonly src: string;
      readonly dest: string;
      readonly options: CopyOptions;
    }
  | {
      readonly kind: 'symlink';
      readonly target: string;
      readonly link: string;
      readonly options: SymlinkOptions;
    };

/** An immutable chain of file actions; paths resolve against `cwd`. */
export class FileActions {
  constructor(
    readonly cwd: string = '/',
    readonly actions: readonly Action[] = [],
  ) {}

  private add(action: Action): FileActions {
    return new FileActions(this.cwd, [...this.actions, action]);
  }

  mkdir(path: string, options: MkdirOptions = {}): FileActions {
    return this.add({ kind: 'mkdir', path: resolvePath(this.cwd, path), options });
  }

  mkfile(path: string, data: string | Uint8Array, options: MkfileOptions = {}): FileActions {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    return this.add({ kind: 'mkfile', path: resolvePath(this.cwd, path), data: bytes, options });
  }

  rm(path: string, options: RmOptions = {}): FileActions {
    return this.add({ kind: 'rm', path: resolvePath(this.cwd, path), options });
  }

  /** Copies `src` (relative to `from`'s working directory) to `dest` (relative to this chain's). */
  copy(from: State, src: string, dest: string, options: CopyOptions = {}): FileActions {
    return this.add({
      kind: 'copy',
      from,
      src: resolvePath(from.settings.cwd, src),
      dest: resolvePath(this.cwd, dest),
      options,
    });
  }

  symlink(target: string, linkPath: string, options: SymlinkOptions = {}): FileActions {
    return this.add({ kind: 'symlink', target, link: resolvePath(this.cwd, linkPath), options });
  }
}

function userOpt(value: string | number): pb_UserOpt {
  return typeof value === 'number' ? { byID: value } : { byName: { name: value } };
}

function chown(owner: Owner | undefined): pb_ChownOpt | undefined {
  if (!owner || (owner.user === undefined && owner.group === undefined)) return undefined;
  return {
    ...(owner.user !== undefined ? { user: userOpt(owner.user) } : {}),
    ...(owner.group !== undefined ? { group: userOpt(owner.group) } : {}),
  };
}

/** Times travel as unix nanoseconds; -1 means "not set" (the daemon picks). */
function timestamp(ms: number | undefined): Int64 {
  return ms === undefined ? -1 : (BigInt(ms) * 1_000_000n).toString();
}

export class FileVertex implements Vertex {
  readonly kind = 'file';

  constructor(
    private readonly base: State,
    private readonly chain: FileActions,
    private readonly step: StepOptions | undefined,
  ) {}

  marshal(_ctx: MarshalContext): MarshalledVertex {
    const inputList = new InputList();
    const inputs = inputList.outputs;
    const inputIndex = (output: Output | undefined) => inputList.indexOf(output);
    // inputs first: the base, then every copy source, so action indexes can follow them
    const baseIndex = inputIndex(this.base.output);
    const sources = this.chain.actions.map((a) => (a.kind === 'copy' ? inputIndex(a.from.output) : -1));
    const actions: pb_FileAction[] = this.chain.actions.map((action, i) => {
      const last = i === this.chain.actions.length - 1;
      const file: pb_FileAction = {
        input: i === 0 ? baseIndex : inputs.length + i - 1,
        secondaryInput: sources[i] ?? -1,
        output: last ? 0 : -1,
      };
      switch (action.kind) {
        case 'mkdir':
          file.mkdir = {
            path: action.path,
            mode: action.options.mode ?? 0o755,
            makeParents: action.options.parents ?? false,
            owner: chown(action.options.owner),
            timestamp: timestamp(action.options.time),
          };
          break;
        case 'mkfile':
          file.mkfile = {
            path: action.path,
            mode: action.options.mode ?? 0o644,
            data: action.data,
            owner: chown(action.options.owner),
            timestamp: timestamp(action.options.time),
          };
          break;
        case 'rm':
          file.rm = {
            path: action.path,
            allowNotFound: action.options.allowNotFound ?? false,
            allowWildcard: action.options.allowWildcard ?? false,
          };
          break;
        case 'copy': {
          const o = action.options;
          file.copy = {
            src: action.src,
            dest: action.dest,
            owner: chown(o.owner),
            mode: typeof o.mode === 'number' ? o.mode : -1,
            ...(typeof o.mode === 'string' ? { modeStr: o.mode } : {}),
            followSymlink: o.followSymlinks ?? false,
            dirCopyContents: o.contentsOnly ?? false,
            attemptUnpackDockerCompatibility: o.unpackArchives ?? false,
            createDestPath: o.createDestPath ?? false,
            allowWildcard: o.allowWildcard ?? false,
            allowEmptyWildcard: o.allowEmptyWildcard ?? false,
            timestamp: timestamp(o.time),
            include_patterns: [...(o.include ?? [])],
            exclude_patterns: [...(o.exclude ?? [])],
            alwaysReplaceExistingDestPaths: o.replaceExisting ?? false,
          };
          break;
        }
        case 'symlink':
          file.symlink = {
            oldpath: action.target,
            newpath: action.link,
            owner: chown(action.options.owner),
            timestamp: timestamp(action.options.time),
          };
          break;
      }
      return file;
    });
    return {
      op: { file: { actions }, constraints: {} },
      inputs,
      metadata: stepMetadata(this.step, []),
    };
  }
}
