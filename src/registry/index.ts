/** OCI distribution client: references, credentials, blobs, manifests, push and the read side. */
export * from './reference.js';
export * from './errors.js';
export * from './retry.js';
export * from './challenge.js';
export * from './chunks.js';
export * from './settings.js';
export * from './keychain.js';
export * from './client.js';
export * from './blobs.js';
export * from './blob-upload.js';
export * from './manifests.js';
export * from './layout.js';
export * from './push.js';
export * from './pull.js';
