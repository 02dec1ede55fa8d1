// cog.yaml: schema, loading, validation and completion. loadConfig does it all from the file system;
// the pure pieces are exported for the build plan and for tests.
export { loadConfig, findConfigFile, displayPath, DEFAULT_CONFIG_FILE } from './load.js';
export type { LoadConfigOptions, LoadedConfig } from './load.js';
export type {
  CogConfig,
  BuildConfig,
  RunItem,
  SecretMount,
  WeightConfig,
  WeightSource,
  ConcurrencyConfig,
  CompletedConfig,
  ConfigWarning,
  LocalArtifact,
  WheelSpec,
} from './types.js';
export { ConfigError, formatIssue, formatLocation, fieldName } from './issues.js';
export type { ConfigIssue, PathIssue, FieldPath, SourceLocation } from './issues.js';
export { parseYamlSource, locate } from './source.js';
export { checkSchema } from './schema.js';
export { findUnknownKeys, suggestKey } from './unknown-keys.js';
export { validateConfig } from './validate.js';
export { completeConfig, DEFAULT_CUDA } from './complete.js';
export type { CompletionInput, CompletionResult } from './complete.js';
export {
  parseCompatData,
  cudaBaseImageFor,
  cudasFromTorch,
  compatibleCuDNNs,
  latestCuDNNForCUDA,
  tfCompatFor,
  cogBaseTag,
  cogBaseTags,
  CompatDataError,
  COMPAT_FILES,
} from './compat.js';
export type { CompatData } from './compat.js';
export { loadCompatData, bundledCompatDir, COMPAT_DIR_ENV } from './compat-load.js';
export {
  parseRequirementsText,
  classifyRequirement,
  findPackageVersion,
  packageName,
} from './requirements.js';
export type { RequirementLine, RequirementKind } from './requirements.js';
export { rewriteRequirements, removeSdkRequirements } from './rewrite.js';
export { parseEnvironment, isReservedEnvName } from './environment.js';
export { checkBareRepository, defaultImageName } from './reference.js';
export { chooseWheels, parseWheelEnv, checkSdkVersion, isLegacySdk, isCogletSdkWheel } from './wheels.js';
export { configLabel, CONFIG_LABEL } from './label.js';
export { initTemplates, writeInitFiles } from './init.js';
export type { InitFile, InitResult } from './init.js';
