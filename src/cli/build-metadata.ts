/**
 * The JSON `cog build --metadata-file` writes, shaped as buildx writes its own: each exporter response
 * value that is base64 of a JSON object (or of a list of objects) is written decoded, so
 * `jq '.["containerimage.descriptor"].digest'` works; other values stay the strings BuildKit sent.
 * The build's id is `buildx.build.ref`, as buildx names it, and `cog.build.ref`, as cog-ts did.
 */

import { isRecord } from '../is-record.js';

const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** `value` decoded when it is base64 of a non-empty JSON object or list of objects, else as it is. */
export function decodedResponseValue(value: string): unknown {
  if (value === '' || !base64.test(value)) return value;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
    if (isRecord(parsed) && Object.keys(parsed).length > 0) return parsed;
    if (Array.isArray(parsed) && parsed.length > 0 && parsed.every(isRecord)) return parsed;
  } catch {
    // not JSON: the value is kept as BuildKit sent it
  }
  return value;
}

/** The metadata file's content: the decoded exporter response, the image name and the build's id. */
export function buildMetadata(
  exporterResponse: Readonly<Record<string, string>>,
  extra: { readonly imageName: string; readonly buildRef: string },
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(exporterResponse)) out[key] = decodedResponseValue(value);
  return {
    ...out,
    'image.name': extra.imageName,
    'buildx.build.ref': extra.buildRef,
    'cog.build.ref': extra.buildRef,
  };
}
