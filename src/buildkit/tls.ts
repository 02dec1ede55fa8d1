/** TLS settings for a tcp:// BUILDKIT_HOST, given like buildctl's flags (files or a directory of them). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CogError } from '../errors.js';
import type { TlsOptions } from './client.js';

export interface TlsFlags {
  readonly tlscacert?: string | undefined;
  readonly tlscert?: string | undefined;
  readonly tlskey?: string | undefined;
  readonly tlsservername?: string | undefined;
  /** holds ca.pem/cert.pem/key.pem or ca.crt/tls.crt/tls.key */
  readonly tlsdir?: string | undefined;
}

function read(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new CogError(
      `--${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        hint: 'give a PEM file buildkitd accepts',
      },
    );
  }
}

function fromDir(dir: string, names: readonly string[]): string | undefined {
  return names.map((n) => join(dir, n)).find((p) => existsSync(p));
}

/** Undefined when no TLS flag is set. */
export function tlsOptionsFrom(flags: TlsFlags): TlsOptions | undefined {
  let { tlscacert, tlscert, tlskey } = flags;
  if (flags.tlsdir) {
    tlscacert ??= fromDir(flags.tlsdir, ['ca.pem', 'ca.crt']);
    tlscert ??= fromDir(flags.tlsdir, ['cert.pem', 'tls.crt']);
    tlskey ??= fromDir(flags.tlsdir, ['key.pem', 'tls.key']);
    if (!tlscacert && !tlscert) {
      throw new CogError(
        `--tlsdir ${flags.tlsdir}: no ca.pem/cert.pem/key.pem (or ca.crt/tls.crt/tls.key) in it`,
      );
    }
  }
  if (!tlscacert && !tlscert && !tlskey && !flags.tlsservername) return undefined;
  if (Boolean(tlscert) !== Boolean(tlskey)) {
    throw new CogError('--tlscert and --tlskey go together', { hint: 'give both, or neither' });
  }
  return {
    ...(tlscacert ? { caCert: read('tlscacert', tlscacert) } : {}),
    ...(tlscert ? { cert: read('tlscert', tlscert) } : {}),
    ...(tlskey ? { key: read('tlskey', tlskey) } : {}),
    ...(flags.tlsservername ? { serverName: flags.tlsservername } : {}),
  };
}

/** `{ tls }` for connectBuildkit when any flag is set, else `{}`. */
export function withTls(flags: TlsFlags | undefined): { tls?: TlsOptions } {
  const tls = flags ? tlsOptionsFrom(flags) : undefined;
  return tls ? { tls } : {};
}
