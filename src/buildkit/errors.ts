import { CogError } from '../errors.js';

/** buildkitd could not be reached, or answered with an error. */
export class BuildkitError extends CogError {}
