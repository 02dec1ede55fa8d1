/** `--output` values like buildctl's: `type=image,name=REF,push=true`, `type=oci,dest=FILE`, `type=local,dest=DIR`. */
import { CogError } from '../errors.js';

export type OutputType = 'image' | 'oci' | 'docker' | 'tar' | 'local';
const outputTypes: readonly OutputType[] = ['image', 'oci', 'docker', 'tar', 'local'];

export interface OutputSpec {
  readonly type: OutputType;
  /** file or directory on the client (`-` = stdout for tarballs); absent for image outputs */
  readonly dest: string | undefined;
  /** the exporter's attributes, everything but `type` and `dest` */
  readonly attrs: Readonly<Record<string, string>>;
}

/** Splits `a=b,c=d` honouring double-quoted values (`name="a,b"`), like buildx's CSV parsing. */
export function splitCsv(value: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (const char of value) {
    if (char === '"') quoted = !quoted;
    else if (char === ',' && !quoted) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  if (quoted) throw new CogError(`unbalanced quote in "${value}"`, { hint: 'close the double quote' });
  parts.push(current);
  return parts.filter((p) => p.length > 0);
}

export function parseOutputFlag(value: string): OutputSpec {
  const attrs: Record<string, string> = {};
  for (const part of splitCsv(value)) {
    const eq = part.indexOf('=');
    if (eq <= 0) {
      throw new CogError(`--output "${value}": "${part}" is not key=value`, {
        hint: 'write e.g. type=local,dest=out or type=image,name=registry/repo:tag,push=true',
      });
    }
    attrs[part.slice(0, eq).trim()] = part.slice(eq + 1);
  }
  const { type, dest, ...rest } = attrs;
  if (!type || !outputTypes.includes(type as OutputType)) {
    throw new CogError(`--output "${value}": type must be one of ${outputTypes.join(', ')}`, {
      hint: 'start the value with type=..., e.g. type=oci,dest=image.tar',
    });
  }
  if (type === 'image') {
    if (dest !== undefined) throw new CogError(`--output "${value}": type=image takes name=, not dest=`);
    if (!rest.name) {
      throw new CogError(`--output "${value}": type=image needs name=REF`, {
        hint: 'add name=registry/repo:tag (and push=true to push)',
      });
    }
    return { type, dest: undefined, attrs: rest };
  }
  if (!dest) {
    throw new CogError(`--output "${value}": type=${type} needs dest=`, {
      hint: type === 'local' ? 'add dest=DIRECTORY' : 'add dest=FILE.tar (or dest=- for stdout)',
    });
  }
  // BuildKit's tar=false writes the image into a content store, which cog does not serve for -o
  if ((type === 'oci' || type === 'docker') && isFalse(rest.tar)) {
    throw new CogError(
      `--output "${value}": tar=${rest.tar} (an image layout directory) is not supported; type=${type} writes a tarball`,
      { hint: `drop tar=${rest.tar} to write the image as a tarball: type=${type},dest=FILE.tar` },
    );
  }
  if (type === 'local' && dest === '-') {
    throw new CogError(`--output "${value}": a local output needs a directory, not stdout`, {
      hint: 'use type=tar,dest=- to stream a tarball to stdout',
    });
  }
  return { type: type as OutputType, dest, attrs: rest };
}

/** A boolean exporter attribute as BuildKit reads one (push=true, push=1). */
export const isTrue = (value: string | undefined) => value !== undefined && /^(1|t|true)$/i.test(value);
/** A boolean exporter attribute BuildKit reads as false (tar=false, tar=0). */
const isFalse = (value: string | undefined) => value !== undefined && /^(0|f|false)$/i.test(value);

/**
 * Whether an `--output` value pushes a named image (`type=image,name=REF,push=true`): a destination of
 * its own, so `--push` needs no `-t` beside it. A value that does not parse is left to its own error.
 */
export function outputPushesImage(values: readonly string[]): boolean {
  return values.some((value) => {
    try {
      const spec = parseOutputFlag(value);
      return spec.type === 'image' && (spec.attrs.name ?? '').trim() !== '' && isTrue(spec.attrs.push);
    } catch {
      return false;
    }
  });
}
