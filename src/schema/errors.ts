import { CogError } from '../errors.js';

/** Classes of failure while generating a schema statically, mirroring upstream Cog's SchemaErrorKind. */
export type SchemaErrorKind =
  | 'parse'
  | 'invalid-signature'
  | 'predictor-not-found'
  | 'method-not-found'
  | 'missing-return-type'
  | 'missing-type-annotation'
  | 'unsupported-type'
  | 'default-factory'
  | 'invalid-constraint'
  | 'invalid-ref'
  | 'optional-output'
  | 'concat-iterator-not-str'
  | 'choices-not-resolvable'
  | 'default-not-resolvable'
  | 'unresolvable-type'
  | 'file-not-found'
  | 'invalid-decorator';

const defaultHints: Record<SchemaErrorKind, string> = {
  parse: 'fix the Python syntax error; cog reads the predictor statically without running it',
  'invalid-signature':
    'cog takes inputs as ordinary parameters with a type annotation, e.g. `prompt: str = Input(...)`: no *args, **kwargs or keyword-only parameters (after `*`)',
  'predictor-not-found': 'check the `run`/`predict`/`train` reference in cog.yaml (form file.py:ClassName)',
  'method-not-found': 'define the method on the class (run() for predictions, train() for training)',
  'missing-return-type': 'annotate the return type, e.g. `def run(self, ...) -> str:`',
  'missing-type-annotation': 'annotate every input parameter, e.g. `prompt: str = Input(...)`',
  'unsupported-type':
    'supported input types are str, int, float, bool, cog.Path, cog.File, cog.Secret, dict, Any, list[X] and Optional[X]',
  'default-factory': 'use a literal default value instead: Input(default=...)',
  'invalid-constraint': 'fix the Input(...) arguments so they fit the parameter type',
  'invalid-ref': "use the form 'predict.py:Predictor' (file.py:ClassName or file.py:function_name)",
  'optional-output': 'return a concrete type; outputs cannot be Optional',
  'concat-iterator-not-str': 'use ConcatenateIterator[str]',
  'choices-not-resolvable': 'use a literal list, e.g. choices=["a", "b"], or a module-level constant list',
  'default-not-resolvable':
    'defaults must be literals (str, int, float, bool, None, list) or Input(...) calls; module-level constants are also accepted',
  'unresolvable-type':
    'define output types as BaseModel subclasses in the predictor file (or a project file it imports)',
  'file-not-found': 'check the file path in the cog.yaml reference; it is relative to the project directory',
  'invalid-decorator': 'give @cog.concurrent a literal integer, e.g. @cog.concurrent(max=4)',
};

/** An error found while reading the predictor statically; the message names file:line when known. */
export class SchemaError extends CogError {
  readonly kind: SchemaErrorKind;
  readonly file: string | undefined;
  readonly line: number | undefined;
  /** the message without the file:line prefix */
  readonly detail: string;

  constructor(
    kind: SchemaErrorKind,
    message: string,
    where: { file?: string; line?: number; hint?: string } = {},
  ) {
    const prefix =
      where.file === undefined
        ? ''
        : where.line === undefined
          ? `${where.file}: `
          : `${where.file}:${where.line}: `;
    super(prefix + message, { hint: where.hint ?? defaultHints[kind] });
    this.kind = kind;
    this.file = where.file;
    this.line = where.line;
    this.detail = message;
  }
}
