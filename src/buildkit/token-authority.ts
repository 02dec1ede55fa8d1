/**
 * The session's token authority: an Ed25519 key by which buildkitd knows which client fetches registry
 * tokens for it. The daemon sends a salt; the key is derived from it, with a secret of this session's
 * mixed in when we hold credentials for the host. So every anonymous client has the same key (anonymous
 * tokens may be shared between sessions), and a client with credentials one of its own: the daemon lends
 * a token cached for one session to another only when that one proves the same key (VerifyTokenAuthority).
 */
import { type KeyObject, createHmac, createPrivateKey, createPublicKey, sign } from 'node:crypto';

/** PKCS#8 DER of an Ed25519 private key, up to its 32-byte seed. */
const pkcs8Ed25519Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SPKI DER of an Ed25519 public key, up to its 32 bytes. */
const spkiEd25519PrefixLength = 12;

/** The key for `salt`: its seed is HMAC-SHA256(salt, secret), or of nothing for anonymous access. */
export function authorityKey(salt: Uint8Array, secret: Uint8Array | undefined): KeyObject {
  const mac = createHmac('sha256', salt);
  if (secret) mac.update(secret);
  return ed25519FromSeed(mac.digest().subarray(0, 32));
}

/** The Ed25519 private key of a 32-byte seed (RFC 8032's secret key). */
export function ed25519FromSeed(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([pkcs8Ed25519Prefix, seed]), format: 'der', type: 'pkcs8' });
}

/** The 32 bytes of the key's public half, as GetTokenAuthority answers them. */
export function publicKeyBytes(key: KeyObject): Buffer {
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return der.subarray(spkiEd25519PrefixLength);
}

/** `payload` signed as NaCl's sign does it: the 64-byte signature, then the payload itself. */
export function signedPayload(key: KeyObject, payload: Uint8Array): Buffer {
  return Buffer.concat([sign(null, payload, key), payload]);
}
