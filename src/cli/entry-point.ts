/**
 * A command that runs the model's predictor or trainer needs cog.yaml to name it: checked before the
 * (possibly long) build, as the server would fail to start only after it.
 */
import { CogError } from '../errors.js';
import { isRecord } from '../is-record.js';

/**
 * `cog train` on a project runs what cog.yaml's `train` names, and `cog run` (and `cog serve`) what its
 * `run` names: a project without it fails here, before anything is built.
 */
export function checkEntryPoint(
  mode: 'predict' | 'train',
  config: { readonly predict: string | null; readonly train: string | null; readonly configFile: string },
  /** the command that serves the predictor, when not `cog run` (e.g. `cog serve`) */
  serves?: string,
): void {
  if (mode === 'train' && !config.train)
    throw new CogError(`${config.configFile} has no 'train': cog train runs the training function it names`, {
      hint: `add it to ${config.configFile}, e.g. \`train: "train.py:train"\` (a file and the function in it); cog run runs predictions`,
    });
  if (mode === 'predict' && !config.predict)
    throw new CogError(
      `${config.configFile} has no 'run': ${serves ? `${serves} serves` : 'cog run runs'} the predictor it names`,
      {
        hint: `add it to ${config.configFile}, e.g. \`run: "run.py:Runner"\` (a file and the class in it)${config.train ? '; cog train runs trainings' : ''}`,
      },
    );
}

/**
 * Whether an image's OpenAPI schema (its run.cog.openapi_schema label) declares a trainer: a model
 * built with `train` has the /trainings endpoint and the TrainingInput component, one without has neither.
 */
export function schemaHasTrainer(schema: Record<string, unknown>): boolean {
  const paths = isRecord(schema.paths) ? schema.paths : {};
  const schemas =
    isRecord(schema.components) && isRecord(schema.components.schemas) ? schema.components.schemas : {};
  return Object.hasOwn(paths, '/trainings') || Object.hasOwn(schemas, 'TrainingInput');
}

/**
 * `cog train IMAGE` on an image built without `train`: refused from its schema, before its container
 * starts (the server would fail only after it, with a message about a missing environment variable). An
 * image without a schema label (built with --no-schema) is not judged.
 */
export function checkImageEntryPoint(mode: 'predict' | 'train', image: string, schema: unknown): void {
  if (mode !== 'train' || !isRecord(schema) || schemaHasTrainer(schema)) return;
  throw new CogError(
    `${image} has no trainer: cog train runs the training function cog.yaml's 'train' names`,
    {
      hint: `the image was built without 'train' in cog.yaml; add it, e.g. \`train: "train.py:train"\` (a file and the function in it), and rebuild; cog run runs predictions`,
    },
  );
}
