/** Source ops: where filesystems come from — images, the client's directories, git, HTTP. */
import type { pb_SourceOp } from '../gen/types.js';
import { State } from './state.js';
import {
  type MarshalContext,
  type MarshalledVertex,
  type StepOptions,
  type Vertex,
  stepMetadata,
} from './vertex.js';

class SourceVertex implements Vertex {
  readonly kind = 'source';

  constructor(
    private readonly source: (ctx: MarshalContext) => pb_SourceOp,
    private readonly withPlatform: boolean,
    private readonly step: StepOptions | undefined,
    private readonly caps: readonly string[] = [],
  ) {}

  marshal(ctx: MarshalContext): MarshalledVertex {
    const source = this.source(ctx);
    return {
      op: { source, ...(this.withPlatform ? { platform: ctx.platform } : {}), constraints: {} },
      inputs: [],
      metadata: stepMetadata(this.step, this.caps),
    };
  }
}

function sourceState(
  source: (ctx: MarshalContext) => pb_SourceOp,
  withPlatform: boolean,
  step?: StepOptions,
  caps: readonly string[] = [],
) {
  return new State({ vertex: new SourceVertex(source, withPlatform, step, caps), index: 0 });
}

/**
 * Normalises an image reference the way Docker does: `python:3.11` → `docker.io/library/python:3.11`,
 * no tag → `:latest` (unless pinned by digest).
 */
export function normalizeImageRef(ref: string): string {
  if (!ref || /\s/.test(ref)) throw new Error(`invalid image reference "${ref}"`);
  const [namePart, digest] = ref.split('@') as [string, string | undefined];
  const slash = namePart.indexOf('/');
  const first = slash < 0 ? '' : namePart.slice(0, slash);
  const hasRegistry = first.includes('.') || first.includes(':') || first === 'localhost';
  let name = hasRegistry ? namePart : `docker.io/${namePart}`;
  if (!hasRegistry && slash < 0) name = `docker.io/library/${namePart}`;
  const lastSegment = name.slice(name.lastIndexOf('/') + 1);
  if (!lastSegment.includes(':') && !digest) name = `${name}:latest`;
  return digest ? `${name}@${digest}` : name;
}

export interface ImageConfig {
  readonly Env?: readonly string[];
  readonly WorkingDir?: string;
  readonly User?: string;
}

export interface ImageOptions extends StepOptions {
  /** `default` (use a local copy if the tag matches), `pull` (always ask the registry), `local` */
  readonly resolveMode?: 'default' | 'pull' | 'local';
  /** the image's config, so later `run`s inherit its env, working directory and user */
  readonly config?: ImageConfig;
}

/** A container image from a registry. */
export function image(ref: string, options: ImageOptions = {}): State {
  const identifier = `docker-image://${normalizeImageRef(ref)}`;
  const attrs: Record<string, string> = {};
  if (options.resolveMode && options.resolveMode !== 'default')
    attrs['image.resolvemode'] = options.resolveMode;
  return withImageConfig(
    sourceState(() => ({ identifier, attrs }), true, options),
    options.config,
  );
}

/** Seeds env, working directory and user from an image config, so later `run`s inherit them. */
function withImageConfig(source: State, config: ImageConfig | undefined): State {
  let state = source;
  for (const entry of config?.Env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) state = state.withEnv(entry.slice(0, eq), entry.slice(eq + 1));
  }
  if (config?.WorkingDir) state = state.withCwd(config.WorkingDir);
  if (config?.User) state = state.withUser(config.User);
  return state;
}

export interface OciLayoutOptions extends StepOptions {
  /** the session serving the store (otherwise any session of the build that serves it can answer) */
  readonly sessionId?: string;
  /** the store's id; the daemon asks the session's content service for store `oci:<storeId>` */
  readonly storeId: string;
  /** the image's config, so later `run`s inherit its env, working directory and user */
  readonly config?: ImageConfig;
}

/**
 * An image from an OCI layout the client serves over the session (BuildKit's llb.OCILayout). `ref`
 * must be pinned by digest, `NAME@sha256:…`; the daemon reads only the digest, NAME is for display.
 */
export function ociLayout(ref: string, options: OciLayoutOptions): State {
  if (!/@sha256:[0-9a-f]{64}$/.test(ref)) {
    throw new Error(`ociLayout: "${ref}" is not pinned by digest (NAME@sha256:…)`);
  }
  const attrs: Record<string, string> = { 'oci.store': options.storeId };
  if (options.sessionId) attrs['oci.session'] = options.sessionId;
  const source = sourceState(() => ({ identifier: `oci-layout://${ref}`, attrs }), true, options, [
    'source.ocilayout',
  ]);
  return withImageConfig(source, options.config);
}

export interface LocalOptions extends StepOptions {
  /** pin the source to one session (otherwise any session serving `name` can answer) */
  readonly sessionId?: string;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly followPaths?: readonly string[];
  /** a stable hint so that transfers of the same directory are incremental */
  readonly sharedKeyHint?: string;
  /** `none` forces a full transfer; `metadata` (default) compares size and mtime */
  readonly differ?: 'none' | 'metadata';
}

/** A directory on the client, sent over the session by its FileSync service under `name`. */
export function local(name: string, options: LocalOptions = {}): State {
  return sourceState(
    (ctx) => {
      const attrs: Record<string, string> = {};
      if (options.sessionId) attrs['local.session'] = options.sessionId;
      else attrs['local.unique'] = ctx.localUniqueId;
      if (options.include?.length) attrs['local.includepattern'] = JSON.stringify(options.include);
      if (options.exclude?.length) attrs['local.excludepatterns'] = JSON.stringify(options.exclude);
      if (options.followPaths?.length) attrs['local.followpaths'] = JSON.stringify(options.followPaths);
      if (options.sharedKeyHint) attrs['local.sharedkeyhint'] = options.sharedKeyHint;
      if (options.differ) attrs['local.differ'] = options.differ;
      return { identifier: `local://${name}`, attrs };
    },
    false,
    options,
  );
}

export interface GitOptions extends StepOptions {
  /** branch, tag or commit */
  readonly ref?: string;
  readonly subdir?: string;
  readonly keepGitDir?: boolean;
  /** a commit checksum the ref must resolve to */
  readonly checksum?: string;
}

/** host[:port]/path of a git remote: https and ssh URLs of one repository give the same id. */
function gitRemoteId(url: string): string {
  const scpLike = /^(?:[^@/:]+@)?([^/:]+):(?!\/\/)(.+)$/.exec(url);
  let hostPath: string;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    const parsed = new URL(url);
    hostPath = `${parsed.host}${parsed.pathname}`;
  } else if (scpLike) {
    hostPath = `${scpLike[1]}/${scpLike[2]}`;
  } else {
    throw new Error(`invalid git URL "${url}"`);
  }
  return hostPath.replace(/\/+$/, '');
}

/** A git repository (the daemon clones it). */
export function git(url: string, options: GitOptions = {}): State {
  let identifier = `git://${gitRemoteId(url)}`;
  if (options.ref || options.subdir)
    identifier += `#${options.ref ?? ''}${options.subdir ? `:${options.subdir}` : ''}`;
  const attrs: Record<string, string> = { 'git.fullurl': url };
  if (options.keepGitDir) attrs['git.keepgitdir'] = 'true';
  if (options.checksum) attrs['git.checksum'] = options.checksum;
  return sourceState(() => ({ identifier, attrs }), false, options);
}

export interface HttpOptions extends StepOptions {
  /** expected digest, `sha256:…` */
  readonly checksum?: string;
  readonly filename?: string;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

/** A single file downloaded over HTTP(S) by the daemon. */
export function http(url: string, options: HttpOptions = {}): State {
  if (!/^https?:\/\//.test(url)) throw new Error(`http: "${url}" is not an http(s) URL`);
  const attrs: Record<string, string> = {};
  if (options.checksum) attrs['http.checksum'] = options.checksum;
  if (options.filename) attrs['http.filename'] = options.filename;
  if (options.mode !== undefined) attrs['http.perm'] = `0${options.mode.toString(8)}`;
  if (options.uid !== undefined) attrs['http.uid'] = String(options.uid);
  if (options.gid !== undefined) attrs['http.gid'] = String(options.gid);
  return sourceState(() => ({ identifier: url, attrs }), false, options);
}
