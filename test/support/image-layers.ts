/** What the layers of a pushed image hold, for e2e tests that check a file is (or is not) in an image. */
import { execOk } from './exec.js';

/** Every path in every layer of `ref` (copied to `dir` with skopeo), as tar lists them. */
export async function layerEntries(ref: string, dir: string): Promise<string[]> {
  await execOk('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${dir}`]);
  const listing = await execOk('bash', [
    '-c',
    `for f in "${dir}"/*; do tar -tzf "$f" 2>/dev/null || true; done`,
  ]);
  return listing.stdout.split('\n');
}
