// ociLayout(): the source op Go's llb.OCILayout(ref, llb.OCIStore(session, store)) marshals, byte for byte.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ociLayout } from '../../src/llb/index.js';

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return out;
}

/** A length-delimited protobuf field, encoded by hand. */
function field(num: number, payload: Uint8Array | string): Buffer {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  return Buffer.concat([Buffer.from([(num << 3) | 2, ...varint(bytes.length)]), bytes]);
}

const digest = `sha256:${'ab'.repeat(32)}`;
const ref = `docker.io/library/hello@${digest}`;

test('oci-layout source: identifier, store and session attrs, platform, the source.ocilayout cap', () => {
  const def = ociLayout(ref, { sessionId: 'sess1', storeId: 'cog-images' }).marshal({
    platform: { OS: 'linux', Architecture: 'amd64' },
  });
  const source = def.ops.find((o) => o.kind === 'source');
  assert.ok(source);
  // pb.Op: platform (10), constraints (11, empty), then the oneof member source (3)
  // pb.SourceOp: identifier (1), attrs (2) as map entries sorted by key
  const expected = Buffer.concat([
    field(10, Buffer.concat([field(1, 'amd64'), field(2, 'linux')])),
    field(11, new Uint8Array()),
    field(
      3,
      Buffer.concat([
        field(1, `oci-layout://${ref}`),
        field(2, Buffer.concat([field(1, 'oci.session'), field(2, 'sess1')])),
        field(2, Buffer.concat([field(1, 'oci.store'), field(2, 'cog-images')])),
      ]),
    ),
  ]);
  assert.equal(Buffer.from(source.bytes).toString('hex'), expected.toString('hex'));
  assert.deepEqual(source.metadata.caps, { 'source.ocilayout': true });
});

test('oci-layout source needs a digest; image config seeds env and working directory', () => {
  assert.throws(() => ociLayout('docker.io/library/hello:latest', { storeId: 's' }), /pinned by digest/);
  const def = ociLayout(ref, { storeId: 's', config: { Env: ['A=1'], WorkingDir: '/src' } })
    .run({ shell: 'true' })
    .root()
    .marshal();
  const exec = def.ops.find((o) => o.kind === 'exec')?.op.exec;
  assert.deepEqual(exec?.meta?.env, ['A=1']);
  assert.equal(exec?.meta?.cwd, '/src');
});
