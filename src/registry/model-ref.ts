/**
 * Where a model bundle goes: the model reference from cog.yaml's `model:` and the COG_MODEL* variables,
 * as upstream Cog resolves it. Pure: the caller passes the environment and the clock.
 *
 * - COG_MODEL (a full reference) wins over everything; with no tag it gets a timestamp tag.
 * - Otherwise the reference is cog.yaml's `model:` with COG_MODEL_REGISTRY (a host), COG_MODEL_REPO (a
 *   repository path) and COG_MODEL_TAG (a tag) each replacing one part. With no `model:` the registry
 *   defaults to COG_REGISTRY_HOST, else r8.im, and COG_MODEL_REPO must name the repository.
 * - The tag defaults to the UTC time, `YYYYMMDDTHHMMSSZ`. Tags starting `cog-` are reserved (the bundle's
 *   own `cog-image.<tag>` lives next to it in the repository).
 * - `image:` with any COG_MODEL* variable is an error; with neither `model:` nor a variable there is no
 *   model reference and `cog push` pushes a single image as before.
 */
import { CogError } from '../errors.js';
import { type Reference, formatReference, parseReference } from './reference.js';
import { defaultRegistryHost } from './settings.js';

export const modelEnvVars = ['COG_MODEL', 'COG_MODEL_REGISTRY', 'COG_MODEL_REPO', 'COG_MODEL_TAG'] as const;

/** Tags with this prefix are cog's own (`cog-image.<tag>`, `cog-weight.<name>.<digest>`). */
export const reservedTagPrefix = 'cog-';

const tagPattern = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export interface ModelRefInput {
  /** cog.yaml `model:` (a bare repository), null when unset */
  readonly model: string | null;
  /** cog.yaml `image:`, null when unset */
  readonly image: string | null;
  /** the name of the config file, for messages */
  readonly configFile?: string;
  readonly env: NodeJS.ProcessEnv;
  readonly now: Date;
}

export interface ResolvedModelRef {
  /** registry, repository and tag (a digest only when COG_MODEL names one) */
  readonly ref: Reference;
  /** what named the repository */
  readonly from: 'COG_MODEL' | 'model' | 'COG_MODEL_REPO';
  /** true when the tag is the generated timestamp */
  readonly timestampTag: boolean;
  /** COG_MODEL_* variables set but unused, because COG_MODEL names the whole reference (upstream's rule) */
  readonly ignored?: readonly string[];
}

/** `YYYYMMDDTHHMMSSZ` in UTC, e.g. 20260508T153042Z. */
export function timestampTag(now: Date): string {
  return now
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** Throws unless `tag` is a tag a user may push a model to (`what` names where it came from). */
export function checkModelTag(tag: string, what: string): void {
  if (!tagPattern.test(tag))
    throw new CogError(
      `${what}: "${tag}" is not a valid tag (letters, digits, _ . -, up to 128, not starting with . or -)`,
      { hint: 'e.g. v1 or 2026-05-08' },
    );
  if (tag.startsWith(reservedTagPrefix))
    throw new CogError(`${what}: the tag "${tag}" starts with "${reservedTagPrefix}", which is reserved`, {
      hint: `cog stores the bundle's parts under ${reservedTagPrefix}image.<tag> and ${reservedTagPrefix}weight.<name>.<digest>; pick a tag without that prefix`,
    });
  // the image goes to cog-image.<tag>, which must be a tag too
  const longest = maxTagLength - bundleImageTag('').length;
  if (tag.length > longest)
    throw new CogError(`${what}: the tag is ${tag.length} characters; a model's tag has at most ${longest}`, {
      hint: `the bundle's image is pushed as ${bundleImageTag('<tag>')}, and a tag has at most ${maxTagLength} characters`,
    });
}

/** The longest tag a registry takes (the distribution spec's 128). */
const maxTagLength = 128;

/** The tag of the bundle's image, next to the model's `tag`. */
function bundleImageTag(tag: string): string {
  return `${reservedTagPrefix}image.${tag}`;
}

function envValue(env: NodeJS.ProcessEnv, name: (typeof modelEnvVars)[number]): string | undefined {
  return env[name]?.trim() || undefined;
}

/** True when the reference text carries a tag (a `:` after the last `/`, before any `@`). */
export function hasTag(text: string): boolean {
  const name = text.split('@')[0] ?? '';
  return name.lastIndexOf(':') > name.lastIndexOf('/');
}

function reparse(text: string, what: string, hint: string): Reference {
  try {
    return parseReference(text);
  } catch (err) {
    throw new CogError(`${what}: ${(err as Error).message}`, { hint, cause: err });
  }
}

function registryFrom(value: string): string {
  const hint = 'set it to a host with an optional port, e.g. COG_MODEL_REGISTRY=r8.im or localhost:5000';
  // a registry host has a dot or a port, or is localhost (as in a reference's first part)
  if (value.includes('/') || value.includes('@') || !(/[.:]/.test(value) || value === 'localhost'))
    throw new CogError(`COG_MODEL_REGISTRY "${value}" is not a registry host`, { hint });
  return reparse(`${value}/x`, `COG_MODEL_REGISTRY "${value}"`, hint).registry;
}

function repositoryFrom(value: string, registry: string): string {
  const hint = 'set it to a repository path without registry, tag or digest, e.g. COG_MODEL_REPO=user/model';
  const first = value.split('/')[0] ?? '';
  if (value.includes('/') && (/[.:]/.test(first) || first === 'localhost'))
    throw new CogError(`COG_MODEL_REPO "${value}" must not name a registry ("${first}")`, {
      hint: `${hint}; the registry goes in COG_MODEL_REGISTRY`,
    });
  if (value.includes('@') || value.includes(':'))
    throw new CogError(`COG_MODEL_REPO "${value}" must be a bare repository path: no tag or digest`, {
      hint,
    });
  return reparse(`${registry}/${value}`, `COG_MODEL_REPO "${value}"`, hint).repository;
}

/**
 * The model reference for `cog push`, or undefined when neither `model:` nor a COG_MODEL* variable is
 * set (then the project pushes a single image, named by `image:` or the command line).
 */
export function resolveModelRef(input: ModelRefInput): ResolvedModelRef | undefined {
  const { env } = input;
  const file = input.configFile ?? 'cog.yaml';
  const set = modelEnvVars.filter((name) => envValue(env, name) !== undefined);
  if (input.image && set.length > 0)
    throw new CogError(`${file} sets 'image', which cannot be combined with ${set.join(', ')}`, {
      hint: `COG_MODEL* variables choose where a model bundle goes: rename 'image' to 'model' in ${file}, or unset ${set.join(', ')}`,
    });

  const full = envValue(env, 'COG_MODEL');
  if (full) {
    const ref = reparse(
      full,
      `COG_MODEL "${full}"`,
      'set it to a model reference, e.g. COG_MODEL=r8.im/user/model or r8.im/user/model:v1',
    );
    const ignored = set.filter((name) => name !== 'COG_MODEL');
    const also = ignored.length > 0 ? { ignored } : {};
    if (ref.digest) return { ref, from: 'COG_MODEL', timestampTag: false, ...also };
    if (hasTag(full)) {
      checkModelTag(ref.tag!, `COG_MODEL "${full}"`);
      return { ref, from: 'COG_MODEL', timestampTag: false, ...also };
    }
    return { ref: { ...ref, tag: timestampTag(input.now) }, from: 'COG_MODEL', timestampTag: true, ...also };
  }

  const model = input.model?.trim() || undefined;
  const repoVar = envValue(env, 'COG_MODEL_REPO');
  if (!model && !repoVar) {
    if (set.length > 0)
      throw new CogError(
        `${set.join(', ')} ${set.length > 1 ? 'are' : 'is'} set, but there is no model repository`,
        {
          hint: `set 'model' in ${file} (e.g. model: r8.im/user/model), or COG_MODEL_REPO, or the whole reference in COG_MODEL`,
        },
      );
    return undefined;
  }

  let registry: string;
  let repository: string;
  if (model) {
    if (hasTag(model) || model.includes('@'))
      throw new CogError(
        `${file}: model "${model}" must be a bare repository — tags and digests are not allowed`,
        {
          hint: 'give the tag with COG_MODEL_TAG; without one, cog push tags the model with the time',
        },
      );
    const ref = reparse(model, `${file}: model "${model}"`, 'e.g. model: r8.im/user/model');
    registry = ref.registry;
    repository = ref.repository;
  } else {
    registry = defaultRegistryHost(env);
    repository = '';
  }
  const registryVar = envValue(env, 'COG_MODEL_REGISTRY');
  if (registryVar) registry = registryFrom(registryVar);
  if (repoVar) repository = repositoryFrom(repoVar, registry);

  const tagVar = envValue(env, 'COG_MODEL_TAG');
  if (tagVar) checkModelTag(tagVar, `COG_MODEL_TAG "${tagVar}"`);
  const ref: Reference = {
    registry,
    repository,
    tag: tagVar ?? timestampTag(input.now),
    digest: undefined,
  };
  return { ref, from: repoVar ? 'COG_MODEL_REPO' : 'model', timestampTag: tagVar === undefined };
}

/** Throws unless `resolved` can be pushed to: a tag, no digest, not a reserved tag. */
export function checkBundleDestination(resolved: ResolvedModelRef): void {
  const { ref } = resolved;
  if (ref.digest)
    throw new CogError(`cannot push a model to ${formatReference(ref)}: it names a digest`, {
      hint: 'a push needs a tag; drop the @sha256:… part from COG_MODEL (without a tag, the time is used)',
    });
  if (!ref.tag)
    throw new CogError(`cannot push a model to ${formatReference(ref)}: it has no tag`, {
      hint: 'set COG_MODEL_TAG, or leave it unset for a timestamp tag',
    });
  checkModelTag(ref.tag, formatReference(ref));
}

/** Where the bundle's image goes: the model's repository, tag `cog-image.<tag>`. */
export function bundleImageRef(model: Reference): Reference {
  return { ...model, tag: bundleImageTag(model.tag ?? ''), digest: undefined };
}
