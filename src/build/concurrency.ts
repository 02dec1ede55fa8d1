/**
 * The concurrency a build bakes (ENV COG_MAX_CONCURRENCY and run.cog.config's concurrency{max}):
 * cog.yaml's `concurrency.max` when set, else the predictor's @cog.concurrent(max=N), as upstream's
 * build takes it. Pure.
 */
import type { CompletedConfig } from '../config/types.js';
import { MINIMUM_PYTHON_FOR_CONCURRENCY, splitPythonVersion } from '../config/validate.js';
import { CogError } from '../errors.js';
import type { PredictorMetadata } from '../schema/index.js';

/**
 * `completed` with the effective concurrency. A max above 1 from cog.yaml on a predictor whose
 * run()/predict() is not async is refused (the decorator's own case is refused by the analysis).
 * `metadata` is undefined when the predictor was not read; cog.yaml's value then stands unchecked.
 * @throws CogError
 */
export function withEffectiveConcurrency(
  completed: CompletedConfig,
  metadata: PredictorMetadata | undefined,
): CompletedConfig {
  const configured = completed.concurrency?.max;
  if (configured !== undefined) {
    if (configured > 1 && metadata !== undefined && !metadata.isAsync) {
      const name = metadata.method.slice(metadata.method.lastIndexOf('.') + 1);
      throw new CogError(
        `${completed.configFile}: concurrency.max is ${configured}, which requires an async run() or predict() method, but ${metadata.method}() (${metadata.file}:${metadata.line}) is not async`,
        {
          hint: `declare it \`async def ${name}(...)\`, or remove concurrency from ${completed.configFile} to take one prediction at a time`,
        },
      );
    }
    return completed;
  }
  if (metadata?.concurrencyMax === undefined) return completed;
  const max = metadata.concurrencyMax;
  // as cog.yaml's concurrency: more than one at a time needs Python 3.11 (the runtime's asyncio)
  const python = splitPythonVersion(completed.pythonVersion ?? '');
  const min = MINIMUM_PYTHON_FOR_CONCURRENCY;
  if (max > 1 && python !== undefined && python[0] === min.major && python[1] < min.minor)
    throw new CogError(
      `${metadata.file}:${metadata.line}: @concurrent(max=${max}) on ${metadata.method}() requires Python ${min.major}.${min.minor} or higher (build.python_version is ${completed.pythonVersion})`,
      {
        hint: `set python_version: "${min.major}.${min.minor}" or later in ${completed.configFile}, or drop the decorator to take one prediction at a time`,
      },
    );
  return { ...completed, concurrency: { max } };
}
