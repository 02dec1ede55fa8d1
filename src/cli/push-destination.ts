/**
 * Image names, checked before anything is built: a well-formed reference that names a tag (or none,
 * for `latest`), never a digest, which the registry (or the store) gives the image rather than takes.
 * Errors name where the name came from (the command line, cog.yaml's `image`).
 */
import { CogError } from '../errors.js';
import { type Reference, formatReference, parseReference } from '../registry/reference.js';

/** Where a build's image name came from, for messages: `-t`, `'image' in cog.yaml`, … */
export function imageNameSource(
  tag: string | undefined,
  config: { readonly image: string | null; readonly model: string | null },
  configFile: string,
): string {
  if (tag !== undefined) return '-t';
  if (config.image) return `'image' in ${configFile}`;
  if (config.model) return `'model' in ${configFile}`;
  return "the project directory's name (cog.yaml names no image)";
}

/** `name` parsed; a malformed one is an error that says where it came from. */
function parseNamed(name: string, from: string): Reference {
  try {
    return parseReference(name);
  } catch (err) {
    if (!(err instanceof CogError)) throw err;
    throw new CogError(`${from}: ${err.message}`, err.hint === undefined ? {} : { hint: err.hint });
  }
}

/** A tag for `ref` in place of its digest, for hints. */
const tagged = (ref: Reference) => formatReference({ ...ref, digest: undefined, tag: ref.tag ?? 'latest' });

/**
 * The reference of the name a build gives its image (in the store, a tarball, or pushed).
 * @param from where `name` came from, for the message: "-t", "'image' in cog.yaml"
 */
export function imageDestination(name: string, from: string): Reference {
  const ref = parseNamed(name, from);
  if (ref.digest)
    throw new CogError(`${from}: ${name} names a digest, which an image is given, not named by`, {
      hint: `name the image with a tag instead, e.g. ${tagged(ref)}`,
    });
  return ref;
}

/** @param from where `name` came from, for the message: "cog push IMAGE", "'image' in cog.yaml", "-t" */
export function pushDestination(name: string, from: string): Reference {
  const ref = parseNamed(name, from);
  if (ref.digest)
    throw new CogError(`${from}: cannot push to ${name}: it names a digest`, {
      hint: `a registry names a pushed image by its digest itself; push to a tag instead, e.g. ${tagged(ref)}`,
    });
  return ref;
}
