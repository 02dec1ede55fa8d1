/** A blob of the local image store whose bytes are not what its digest says, and how to mend it. */
import { CogError } from '../errors.js';

/**
 * What mends a damaged blob in the local image store: a build finds the blob there and keeps it, so the
 * images that use it must go first (removing the last one drops the blob). `names`: those images, when
 * known.
 */
export function damagedBlobHint(names: readonly string[] = []): string {
  const remove = names.length ? `\`cog image rm ${names.join(' ')}\`` : '`cog image ls`, `cog image rm NAME`';
  return `remove the images that use it (${remove}, which drops blobs no image uses), then build again; a build alone keeps the damaged copy`;
}

/** A blob in the local image store whose bytes are not what its digest and size say. */
export class DamagedBlobError extends CogError {
  constructor(
    readonly digest: string,
    message: string,
    options: { readonly cause?: unknown; readonly usedBy?: readonly string[] } = {},
  ) {
    super(message, {
      hint: damagedBlobHint(options.usedBy),
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
  }
}

/** A blob whose file has `size` bytes where its descriptor says `expected`; `where`: the store holding it. */
export function wrongSizeError(
  digest: string,
  where: string,
  size: number,
  expected: number,
  usedBy?: readonly string[],
): DamagedBlobError {
  return new DamagedBlobError(
    digest,
    `blob ${digest} in ${where} has ${size} bytes, not ${expected}: it is damaged${size < expected ? ' (cut short)' : ''}`,
    usedBy ? { usedBy } : {},
  );
}

/**
 * A blob an image needs (`what`: its manifest, config, …) that is gone from the local image store:
 * unlike a damaged copy, a build writes it again once the images that name it are removed (`usedBy`).
 */
export function missingBlobError(
  what: string,
  digest: string,
  ref: string,
  usedBy: readonly string[],
  cause?: unknown,
): CogError {
  return new CogError(`${what} ${digest} of ${ref} is missing from the local image store: it is damaged`, {
    hint: `remove it (\`cog image rm ${[...new Set(usedBy)].join(' ')}\`), then build it again`,
    ...(cause === undefined ? {} : { cause }),
  });
}
