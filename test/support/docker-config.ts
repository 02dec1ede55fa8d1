/** DOCKER_CONFIG directories for tests that log in to the test bed's registries. */
import { mkdir, writeFile } from 'node:fs/promises';
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
