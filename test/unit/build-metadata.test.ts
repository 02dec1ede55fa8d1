// The --metadata-file JSON: shaped as buildx writes it, so the same jq queries work on both.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildMetadata, decodedResponseValue } from '../../src/cli/build-metadata.js';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

test('base64 JSON objects in the exporter response are written decoded; other values as they came', () => {
  const descriptor = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${'a'.repeat(64)}`,
    size: 1234,
  };
  const digest = `sha256:${'b'.repeat(64)}`;
  const cacheManifest = JSON.stringify({ mediaType: 'application/vnd.oci.image.index.v1+json' });
  const out = buildMetadata(
    {
      'containerimage.descriptor': b64(descriptor),
      'containerimage.config.digest': digest,
      'containerimage.digest': digest,
      'cache.manifest': cacheManifest,
    },
    { imageName: 'r.example/x:1', buildRef: 'abc123' },
  );
  assert.deepEqual(out['containerimage.descriptor'], descriptor);
  assert.equal(out['containerimage.digest'], digest);
  assert.equal(out['containerimage.config.digest'], digest);
  assert.equal(out['cache.manifest'], cacheManifest);
  assert.equal(out['image.name'], 'r.example/x:1');
  assert.equal(out['buildx.build.ref'], 'abc123');
  assert.equal(out['cog.build.ref'], 'abc123');
});

test('only a non-empty object, or a list of objects, is decoded', () => {
  assert.deepEqual(decodedResponseValue(b64([{ a: 1 }])), [{ a: 1 }]);
  for (const kept of [b64({}), b64([]), b64('text'), b64(3), 'true', '', 'not base64!'])
    assert.equal(decodedResponseValue(kept), kept);
});
