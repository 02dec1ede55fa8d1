/**
 * Where a push goes, checked before anything is built: a well-formed reference that names a tag (or
 * none, for `latest`), never a digest, which the registry gives the image rather than takes. Errors name
 * where the name came from (the command line, cog.yaml's `image`).
 */
import { CogError } from '../errors.js';
import { type Reference, formatReference, parseReference } from '../registry/reference.js';

/** @param from where `name` came from, for the message: "cog push IMAGE", "'image' in cog.yaml", "-t" */
export function pushDestination(name: string, from: string): Reference {
  let ref: Reference;
  try {
    ref = parseReference(name);
  } catch (err) {
    if (!(err instanceof CogError)) throw err;
    throw new CogError(`${from}: ${err.message}`, err.hint === undefined ? {} : { hint: err.hint });
  }
  if (ref.digest)
    throw new CogError(`${from}: cannot push to ${name}: it names a digest`, {
      hint: `a registry names a pushed image by its digest itself; push to a tag instead, e.g. ${formatReference({ ...ref, digest: undefined, tag: ref.tag ?? 'latest' })}`,
    });
  return ref;
}
