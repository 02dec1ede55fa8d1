/**
 * A command that runs the model's predictor or trainer needs cog.yaml to name it: checked before the
 * (possibly long) build, as the server would fail to start only after it.
 */
import { CogError } from '../errors.js';

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
