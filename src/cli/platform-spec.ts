/**
 * A `--platform` value as containerd (and so docker and buildx) reads one: in any case; an architecture
 * alone is Linux's (`arm64` is linux/arm64); the other names of an architecture (`x86_64`, `aarch64`)
 * are its Go name; arm64's default variant `v8` and amd64's `v1` are no variant. Pure.
 */
import type { Platform } from '../registry/pull.js';

/** Architectures a bare `--platform ARCH` may name (containerd knows these as Linux's). */
const bareArchitectures = new Set([
  'amd64',
  'arm64',
  'arm',
  '386',
  'ppc64le',
  's390x',
  'riscv64',
  'x86_64',
  'x86-64',
  'aarch64',
  'i386',
]);

/** An architecture (and variant) under its Go name, its default variant dropped. */
function normalizeArchitecture(os: string, architecture: string, variant: string | undefined): Platform {
  const platform = (arch: string, dropped: readonly string[]): Platform => ({
    os,
    architecture: arch,
    ...(variant && !dropped.includes(variant) ? { variant } : {}),
  });
  switch (architecture) {
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return platform('amd64', ['v1']);
    case 'aarch64':
    case 'arm64':
      return platform('arm64', ['v8', '8']);
    case 'i386':
      return platform('386', []);
    default:
      return platform(architecture, []);
  }
}

/**
 * `os/architecture[/variant]` or a bare architecture, normalized; undefined for anything else (an
 * empty part, more than three, a bare word that is no architecture).
 */
export function readPlatformSpec(text: string): Platform | undefined {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length > 3 || parts.some((part) => part === '')) return undefined;
  if (parts.length === 1)
    return bareArchitectures.has(parts[0]!)
      ? normalizeArchitecture('linux', parts[0]!, undefined)
      : undefined;
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizeArchitecture(os, architecture, variant);
}
