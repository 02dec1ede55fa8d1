// Which cog SDK and coglet to install: COG_SDK_WHEEL / COGLET_WHEEL / build.sdk_version → WheelSpec.
// Pure: a path value is made absolute against `cwd`; directories are resolved by wheel-files.ts.
import { isAbsolute, resolve } from 'node:path';
import { comparePep440, isPrerelease, parsePep440 } from './version.js';
import type { WheelSpec } from './types.js';

export const SDK_WHEEL_ENV = 'COG_SDK_WHEEL';
export const COGLET_WHEEL_ENV = 'COGLET_WHEEL';
/** build.sdk_version value meaning "the latest pre-release" */
export const PRERELEASE_SENTINEL = 'prerelease';
export const MINIMUM_SDK_VERSION = '0.16.0';
/** SDKs below this do not depend on coglet and must not get it installed */
export const COGLET_SDK_VERSION = '0.17.0';

/**
 * Parse a COG_SDK_WHEEL / COGLET_WHEEL value: "pypi" or "pypi:<version>" (prefix case-insensitive),
 * an http(s) URL, or else a file or directory path.
 */
export function parseWheelEnv(value: string, pkg: 'cog' | 'coglet', cwd: string): WheelSpec {
  const v = value.trim();
  const lower = v.toLowerCase();
  if (lower === 'pypi' || lower.startsWith('pypi:')) {
    const version = lower === 'pypi' ? '' : v.slice(5).trim();
    const parsed = version === '' ? undefined : parsePep440(version);
    return {
      kind: 'pypi',
      package: pkg,
      version: version === '' ? null : (parsed?.text ?? version),
      pre: parsed !== undefined && isPrerelease(parsed),
    };
  }
  if (/^https?:\/\//i.test(v)) return { kind: 'url', url: v, pre: false };
  return { kind: 'file', path: isAbsolute(v) ? v : resolve(cwd, v), pre: false };
}

export type SdkVersionCheck = { ok: true } | { ok: false; message: string };

/** build.sdk_version: the sentinel, or a PEP 440 / semver pre-release version ≥ 0.16.0. */
export function checkSdkVersion(value: string): SdkVersionCheck {
  if (value === PRERELEASE_SENTINEL) return { ok: true };
  const parsed = parsePep440(value);
  if (parsed === undefined) {
    return { ok: false, message: `must be a version like "0.17.0" or "${PRERELEASE_SENTINEL}"` };
  }
  const minimum = parsePep440(MINIMUM_SDK_VERSION);
  if (minimum !== undefined && comparePep440(parsed, minimum) < 0) {
    return {
      ok: false,
      message: `cog version ${value} is below the minimum required version ${MINIMUM_SDK_VERSION}`,
    };
  }
  return { ok: true };
}

export interface WheelChoice {
  sdk: WheelSpec;
  coglet: WheelSpec | null;
  warnings: string[];
}

/**
 * Resolve both wheels. SDK: COG_SDK_WHEEL, else sdk_version, else latest cog from PyPI. coglet is
 * installed explicitly only for COGLET_WHEEL as a file, URL or pinned PyPI version, and never for a
 * PyPI SDK pinned below 0.17.0. A pre-release SDK adds --pre to both installs.
 */
export function chooseWheels(opts: {
  env: Readonly<Record<string, string | undefined>>;
  sdkVersion: string | undefined;
  cwd: string;
}): WheelChoice {
  const warnings: string[] = [];
  const sdkEnv = opts.env[SDK_WHEEL_ENV];
  let sdk: WheelSpec;
  if (sdkEnv !== undefined && sdkEnv.trim() !== '') {
    sdk = parseWheelEnv(sdkEnv, 'cog', opts.cwd);
  } else if (opts.sdkVersion === PRERELEASE_SENTINEL) {
    sdk = { kind: 'pypi', package: 'cog', version: null, pre: true };
    warnings.push('build.sdk_version is "prerelease": installing the latest pre-release of the cog SDK');
  } else if (opts.sdkVersion !== undefined && opts.sdkVersion !== '') {
    const parsed = parsePep440(opts.sdkVersion);
    sdk = {
      kind: 'pypi',
      package: 'cog',
      version: parsed?.text ?? opts.sdkVersion,
      pre: parsed !== undefined && isPrerelease(parsed),
    };
  } else {
    sdk = { kind: 'pypi', package: 'cog', version: null, pre: false };
  }

  const cogletEnv = opts.env[COGLET_WHEEL_ENV];
  let coglet: WheelSpec | null = null;
  if (cogletEnv !== undefined && cogletEnv.trim() !== '') {
    const spec = parseWheelEnv(cogletEnv, 'coglet', opts.cwd);
    if (spec.kind !== 'pypi' || spec.version !== null) coglet = spec;
  }
  if (coglet !== null && isLegacySdk(sdk)) {
    warnings.push(
      `Skipping coglet install for legacy SDK (cog ${sdk.kind === 'pypi' ? sdk.version : ''} < ${COGLET_SDK_VERSION})`,
    );
    coglet = null;
  }
  if (coglet !== null && sdk.pre && !coglet.pre) coglet = { ...coglet, pre: true };
  return { sdk, coglet, warnings };
}

/** A PyPI SDK pinned below 0.17.0: no coglet, no static schema. */
export function isLegacySdk(sdk: WheelSpec): boolean {
  if (sdk.kind !== 'pypi' || sdk.version === null) return false;
  const v = parsePep440(sdk.version);
  const min = parsePep440(COGLET_SDK_VERSION);
  return v !== undefined && min !== undefined && comparePep440(v, min) < 0;
}

/** COG_SDK_WHEEL pointing at a coglet wheel (the Rust runtime standing in for the SDK). */
export function isCogletSdkWheel(sdk: WheelSpec): boolean {
  if (sdk.kind === 'url') return sdk.url.toLowerCase().includes('coglet');
  if (sdk.kind === 'file') return (sdk.path.split(/[\\/]/).pop() ?? '').toLowerCase().includes('coglet');
  return false;
}
