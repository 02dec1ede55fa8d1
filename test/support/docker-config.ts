/** DOCKER_CONFIG directories for tests that log in to the test bed's registries. */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The `auth` value of a config.json login: base64 of `user:password`. */
export function basicAuth(user: string, password: string): string {
  return Buffer.from(`${user}:${password}`).toString('base64');
}

/** Writes `dir`/config.json with a login (auths) for `host`; resolves to `dir`, for DOCKER_CONFIG. */
export async function writeDockerLogin(
  dir: string,
  host: string,
  user: string,
  password: string,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({ auths: { [host]: { auth: basicAuth(user, password) } } }),
  );
  return dir;
}

/**
 * Writes `binDir`/docker-credential-`name`, a credential helper that answers `get` for `host` with
 * `username`/`secret` and "credentials not found" for anything else. With `callsLog`, each call's verb
 * and server URL are appended there (`get HOST`). Put `binDir` on PATH and name the helper in
 * credHelpers or credsStore.
 */
export async function writeCredentialHelper(
  binDir: string,
  name: string,
  login: { host: string; username: string; secret: string; callsLog?: string },
): Promise<void> {
  const creds = join(binDir, `${name}-creds.json`);
  await writeFile(
    creds,
    JSON.stringify({ ServerURL: login.host, Username: login.username, Secret: login.secret }),
  );
  const helper = join(binDir, `docker-credential-${name}`);
  await writeFile(
    helper,
    [
      '#!/bin/sh',
      'url=$(cat)',
      ...(login.callsLog ? [`echo "$1 $url" >> "${login.callsLog}"`] : []),
      `if [ "$1" = get ] && [ "$url" = "${login.host}" ]; then cat "${creds}"; exit 0; fi`,
      'echo "credentials not found in native keychain"; exit 1',
      '',
    ].join('\n'),
  );
  await chmod(helper, 0o755);
}
