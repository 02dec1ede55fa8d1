/** Facts a build reads from the host: the extra CA certificate and the project's git revision. */
import { readFile, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CogError } from '../errors.js';
import { commandOutput } from '../command-output.js';

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** COG_CA_CERT's value, trimmed; undefined when unset or empty. */
function caCertValue(env: NodeJS.ProcessEnv): string | undefined {
  return env.COG_CA_CERT?.trim() || undefined;
}

/** The file or directory COG_CA_CERT names; undefined when it is unset or inline PEM. */
export function caCertPath(env: NodeJS.ProcessEnv): string | undefined {
  const value = caCertValue(env);
  return value && !value.startsWith('-----BEGIN') ? value : undefined;
}

/**
 * COG_CA_CERT, like upstream: inline PEM, a PEM file, or a directory of .crt/.pem files. Returns the
 * certificates as one PEM bundle, or undefined when the variable is unset.
 */
export async function readCaCert(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const value = caCertValue(env);
  if (!value) return undefined;
  let text: string;
  if (caCertPath(env) === undefined) {
    text = value;
  } else {
    let info;
    try {
      info = await stat(value);
    } catch {
      throw new CogError(`COG_CA_CERT: ${value} is not PEM text and no such file or directory exists`, {
        hint: 'set COG_CA_CERT to a PEM certificate, a .crt/.pem file, or a directory of them',
      });
    }
    if (info.isDirectory()) {
      const names = (await readdir(value)).filter((n) => /\.(crt|pem)$/.test(n)).sort();
      text = (await Promise.all(names.map((n) => readFile(join(value, n), 'utf8')))).join('\n');
    } else {
      text = await readFile(value, 'utf8');
    }
  }
  const certs = text.match(pemBlock);
  if (!certs) {
    throw new CogError(
      `COG_CA_CERT: no PEM certificate found in ${value.startsWith('-----') ? 'the value' : value}`,
      {
        hint: 'a certificate starts with -----BEGIN CERTIFICATE-----',
      },
    );
  }
  return `${certs.join('\n')}\n`;
}

/**
 * The OpenAPI schema file a build takes instead of generating one: --openapi-schema, else
 * COG_OPENAPI_SCHEMA. `named` is how the user gave it, for messages.
 */
export function schemaOverride(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): { readonly path: string; readonly named: string } | undefined {
  if (flag) return { path: resolve(flag), named: `--openapi-schema ${flag}` };
  const value = env.COG_OPENAPI_SCHEMA;
  return value ? { path: resolve(value), named: `COG_OPENAPI_SCHEMA=${value}` } : undefined;
}

// child_process is loaded when git is needed: `cog build`'s up-to-date check seldom needs it
async function git(cwd: string, args: string[]): Promise<string | undefined> {
  return (await commandOutput('git', args, { cwd }))?.stdout.trim();
}

/**
 * Whether git could find a repository for `dir`: GIT_DIR is set, or `.git` (a directory, or the file
 * of a linked worktree or submodule) is in `dir` or above it. When not, git would only fail.
 */
export function inGitWorktree(dir: string, env: NodeJS.ProcessEnv): boolean {
  if (env.GIT_DIR) return true;
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(join(d, '.git'))) return true;
    if (dirname(d) === d) return false;
  }
}

/**
 * org.opencontainers.image.revision/version: from GitHub Actions' env, else git (both asked at once;
 * not at all outside a repository), else nothing.
 */
export async function gitLabels(
  projectDir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ revision?: string; version?: string }> {
  const inRepo = inGitWorktree(projectDir, env);
  const [revision, version] = await Promise.all([
    env.GITHUB_SHA || (inRepo ? git(projectDir, ['rev-parse', 'HEAD']) : undefined),
    env.GITHUB_REF_NAME || (inRepo ? git(projectDir, ['describe', '--tags', '--dirty']) : undefined),
  ]);
  return { ...(revision ? { revision } : {}), ...(version ? { version } : {}) };
}
