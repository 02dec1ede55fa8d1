// Loose "M[.m[.p]][+meta]" versions as used for CUDA, cuDNN, torch and Python, and the comparisons
// the compatibility logic needs. A missing part is "unknown", not zero, for `matches`.

export interface LooseVersion {
  major: number;
  minor: number | undefined;
  patch: number | undefined;
  /** everything after "+", e.g. "cu118" */
  modifier: string | undefined;
}

const LOOSE = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\+(.+))?$/;

/** Parse "M[.m[.p]][+meta]"; undefined when the text is not of that form. */
export function parseLooseVersion(text: string): LooseVersion | undefined {
  const m = LOOSE.exec(text.trim());
  if (m === null) return undefined;
  return {
    major: Number(m[1]),
    minor: m[2] === undefined ? undefined : Number(m[2]),
    patch: m[3] === undefined ? undefined : Number(m[3]),
    modifier: m[4],
  };
}

/** Drop everything from the first "+": "2.7.0+cu128" → "2.7.0". */
export function stripModifier(version: string): string {
  const plus = version.indexOf('+');
  return plus < 0 ? version : version.slice(0, plus);
}

/** Same major and minor; the patch must agree only when both sides have one ("2.3" matches "2.3.1"). */
export function versionMatches(a: string, b: string): boolean {
  const va = parseLooseVersion(a);
  const vb = parseLooseVersion(b);
  if (va === undefined || vb === undefined) return false;
  if (va.major !== vb.major || (va.minor ?? 0) !== (vb.minor ?? 0)) return false;
  return va.patch === undefined || vb.patch === undefined || va.patch === vb.patch;
}

/** Same major.minor. */
export function equalMinor(a: string, b: string): boolean {
  const va = parseLooseVersion(a);
  const vb = parseLooseVersion(b);
  return va !== undefined && vb !== undefined && va.major === vb.major && (va.minor ?? 0) === (vb.minor ?? 0);
}

/** Compare major, minor, patch (missing parts count as 0); unparsable versions sort first. */
export function compareLooseVersions(a: string, b: string): number {
  const va = parseLooseVersion(a);
  const vb = parseLooseVersion(b);
  if (va === undefined || vb === undefined) return (va === undefined ? 0 : 1) - (vb === undefined ? 0 : 1);
  return va.major - vb.major || (va.minor ?? 0) - (vb.minor ?? 0) || (va.patch ?? 0) - (vb.patch ?? 0) || 0;
}

export function versionGreater(a: string, b: string): boolean {
  return compareLooseVersions(a, b) > 0;
}

/** "3.12.1" → "3.12"; undefined if there is no integer major and minor. */
export function majorMinor(version: string): string | undefined {
  const m = /^(\d+)\.(\d+)(?:\.|$)/.exec(version.trim());
  return m === null ? undefined : `${Number(m[1])}.${Number(m[2])}`;
}

// ---------------------------------------------------------------------------------------------
// PEP 440 (and the semver pre-release spellings Cog accepts for sdk_version)

const PEP440 =
  /^v?(?:(\d+)!)?(\d+(?:\.\d+)*)(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d*))?(?:-(\d+)|[-_.]?(?:post|rev|r)[-_.]?(\d*))?(?:[-_.]?dev[-_.]?(\d*))?(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$/i;

const SEMVER_PRE = /^v?(\d+\.\d+\.\d+)-(alpha|beta|rc|dev)\.?(\d+)$/i;

export interface Pep440Version {
  /** release segment, e.g. [0, 17, 0] */
  release: number[];
  /** pre-release phase, if any */
  pre: { phase: 'a' | 'b' | 'rc'; number: number } | undefined;
  dev: number | undefined;
  /** canonical text, e.g. "0.17.0rc1" */
  text: string;
}

/**
 * Parse a PEP 440 version, or a semver pre-release (0.17.0-alpha1 → 0.17.0a1, -beta2 → b2, -rc1 → rc1,
 * -dev1 → .dev1). Undefined when neither.
 */
export function parsePep440(input: string): Pep440Version | undefined {
  const text = input.trim();
  const semver = SEMVER_PRE.exec(text);
  if (semver !== null) {
    const base = semver[1] ?? '';
    const kind = (semver[2] ?? '').toLowerCase();
    const n = Number(semver[3]);
    const release = base.split('.').map(Number);
    if (kind === 'dev') return { release, pre: undefined, dev: n, text: `${base}.dev${n}` };
    const phase = kind === 'alpha' ? 'a' : kind === 'beta' ? 'b' : 'rc';
    return { release, pre: { phase, number: n }, dev: undefined, text: `${base}${phase}${n}` };
  }
  const m = PEP440.exec(text);
  if (m === null) return undefined;
  const release = (m[2] ?? '').split('.').map(Number);
  let pre: Pep440Version['pre'];
  if (m[3] !== undefined) {
    const raw = m[3].toLowerCase();
    const phase = raw === 'a' || raw === 'alpha' ? 'a' : raw === 'b' || raw === 'beta' ? 'b' : 'rc';
    pre = { phase, number: m[4] === undefined || m[4] === '' ? 0 : Number(m[4]) };
  }
  const dev = m[7] === undefined ? undefined : Number(m[7] || 0);
  return { release, pre, dev, text: text.replace(/^v/i, '') };
}

export function isPrerelease(v: Pep440Version): boolean {
  return v.pre !== undefined || v.dev !== undefined;
}

const PHASE_ORDER = { a: 0, b: 1, rc: 2 } as const;

/** Order two PEP 440 versions (release, then dev < pre < final). Post releases and locals are ignored. */
export function comparePep440(a: Pep440Version, b: Pep440Version): number {
  const len = Math.max(a.release.length, b.release.length);
  for (let i = 0; i < len; i++) {
    const d = (a.release[i] ?? 0) - (b.release[i] ?? 0);
    if (d !== 0) return d;
  }
  const rank = (v: Pep440Version): [number, number, number] => {
    if (v.pre !== undefined) return [1, PHASE_ORDER[v.pre.phase], v.pre.number];
    if (v.dev !== undefined) return [0, 0, v.dev];
    return [2, 0, 0];
  };
  const [ra, rb] = [rank(a), rank(b)];
  return ra[0] - rb[0] || ra[1] - rb[1] || ra[2] - rb[2];
}
