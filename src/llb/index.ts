export {
  type MarshalledDefinition,
  type MarshalledOp,
  definitionOutput,
  digestOf,
  marshalDefinition,
  readDefinition,
} from './definition.js';
export type { CacheSharing, Mount, RunOptions } from './exec.js';
export { FileActions } from './file.js';
export { git, http, image, local, normalizeImageRef, ociLayout } from './source.js';
export { diff, ExecState, merge, resolvePath, scratch, State } from './state.js';
export type { Output, StepOptions } from './vertex.js';
