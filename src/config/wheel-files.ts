// File-system side of wheel specs: a path must exist; a directory must hold exactly one wheel for the
// package (for coglet, one built for x86_64 or for any platform).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CogError } from '../errors.js';
import type { WheelSpec } from './types.js';

export function resolveWheelFile(spec: WheelSpec, pkg: 'cog' | 'coglet', envName: string): WheelSpec {
  if (spec.kind !== 'file') return spec;
  let isDir: boolean;
  try {
    isDir = statSync(spec.path).isDirectory();
  } catch {
    throw new CogError(`${envName}: path not found: ${spec.path}`, {
      hint: `set ${envName} to a .whl file, a directory with one ${pkg} wheel, a URL, or "pypi[:version]"`,
    });
  }
  if (!isDir) return spec;
  const wheels = readdirSync(spec.path)
    .filter((f) => f.startsWith(`${pkg}-`) && f.endsWith('.whl'))
    .filter((f) => pkg !== 'coglet' || /x86_64|-none-any\.whl$/.test(f))
    .sort();
  if (wheels.length === 0) {
    throw new CogError(`${envName}: no wheel matching ${pkg}-*.whl in ${spec.path}`, {
      hint: `build the ${pkg} wheel into that directory, or point ${envName} at the wheel file`,
    });
  }
  if (wheels.length > 1) {
    throw new CogError(`${envName}: multiple wheels for ${pkg} in ${spec.path}: ${wheels.join(', ')}`, {
      hint: `point ${envName} at one wheel file`,
    });
  }
  return { ...spec, path: join(spec.path, wheels[0] ?? '') };
}
