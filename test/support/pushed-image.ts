/** What a pushed image holds, read back with skopeo from the test bed's (plain HTTP) registries. */
import { execOk } from './exec.js';

/** The image config of `ref` (of its `arch` image, when `ref` is an index). */
export async function pushedConfig<T>(ref: string, arch?: string): Promise<T> {
  const out = await execOk('skopeo', [
    'inspect',
    '--config',
    ...(arch ? ['--override-arch', arch] : []),
    '--tls-verify=false',
    `docker://${ref}`,
  ]);
  return JSON.parse(out.stdout) as T;
}

/** The manifest (or index) `ref` names, as the registry serves it. */
export async function pushedManifest<T>(ref: string): Promise<T> {
  const out = await execOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  return JSON.parse(out.stdout) as T;
}

/** Every path in every layer of `ref` (copied to `dir` with skopeo), as tar lists them. */
export async function layerEntries(ref: string, dir: string): Promise<string[]> {
  await execOk('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${dir}`]);
  const listing = await execOk('bash', [
    '-c',
    `for f in "${dir}"/*; do tar -tzf "$f" 2>/dev/null || true; done`,
  ]);
  return listing.stdout.split('\n');
}
