/**
 * Client-side output handling for `cog predict` / `cog train`, following upstream Cog's CLI
 * (pkg/cli/predict.go): the prediction response is turned into a plan — text to print and files
 * to write — by the output schema, and {@link writeOutputs} carries the plan out. Planning is pure;
 * the writer is the only function that touches the file system.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { CogError } from '../errors.js';
import { directoryProblem } from '../writable-dir.js';
import { wholeOutputHint } from './server-output.js';
import {
  deref,
  extensionForMimeType,
  isRecord,
  isUriSchema,
  resolveSchema,
  schemaTypes,
  type JsonSchema,
  type OpenApiDoc,
  type RunMode,
} from './inputs.js';

/** The fields of a prediction (or training) response the CLI uses. */
export interface PredictionResponse {
  readonly status: string;
  readonly output?: unknown;
  readonly error?: unknown;
  readonly logs?: string | null;
  readonly metrics?: unknown;
}

/** One step of an output plan. */
export type OutputAction =
  /** text for stdout (the writer adds the trailing newline) */
  | { readonly kind: 'print'; readonly text: string }
  /** a file to write; `path` is relative to the writer's cwd unless absolute (`~` is expanded) */
  | { readonly kind: 'file'; readonly path: string; readonly data: Buffer }
  /** a note for stderr, e.g. "No output generated" */
  | { readonly kind: 'warn'; readonly text: string };

export interface PlanOptions {
  /**
   * the -o value; default file names start with "output". A value ending in `/` is a directory: the
   * outputs go in it under their default names (output.png, output.0.png; text as output.txt, other
   * values as output.json)
   */
  readonly outputPath?: string;
  /** which endpoint's schema to read; defaults to predict */
  readonly mode?: RunMode;
  /**
   * what ends the error of a failed prediction: the model server's last lines of output, which the
   * default progress view does not show (what the model printed as it failed)
   */
  readonly failureDetail?: string;
}

/** A decoded data URL. */
export interface DataUrl {
  readonly mimeType: string;
  readonly data: Buffer;
}

/** Decodes a `data:` URL (base64 or percent-encoded); undefined when the string is not one. */
export function decodeDataUrl(url: string): DataUrl | undefined {
  if (!url.startsWith('data:')) return undefined;
  const comma = url.indexOf(',');
  if (comma < 0) return undefined;
  const meta = url.slice(5, comma).split(';');
  const isBase64 = meta.length > 1 && meta[meta.length - 1]?.toLowerCase() === 'base64';
  const params = isBase64 ? meta.slice(0, -1) : meta;
  const mimeType = params.join(';') === '' ? 'text/plain;charset=US-ASCII' : params.join(';');
  const payload = url.slice(comma + 1);
  let data: Buffer;
  if (isBase64) {
    data = Buffer.from(payload, 'base64');
  } else {
    try {
      data = Buffer.from(decodeURIComponent(payload), 'utf8');
    } catch {
      return undefined;
    }
  }
  return { mimeType, data };
}

/**
 * The output schema: paths./predictions (or /trainings).post.responses.200 → … → properties.output,
 * falling back to the Output (or TrainingOutput) component. Undefined when the document has neither.
 */
export function outputSchemaOf(
  doc: OpenApiDoc | undefined,
  mode: RunMode = 'predict',
): JsonSchema | undefined {
  if (doc === undefined) return undefined;
  const endpoint = mode === 'train' ? '/trainings' : '/predictions';
  const path = isRecord(doc.paths) ? doc.paths[endpoint] : undefined;
  const post = isRecord(path) ? path.post : undefined;
  const responses = isRecord(post) ? post.responses : undefined;
  const ok = isRecord(responses) ? deref(doc, responses['200']) : undefined;
  const content = isRecord(ok?.content) ? ok.content['application/json'] : undefined;
  const response = isRecord(content) ? resolveSchema(doc, content.schema) : undefined;
  const props = isRecord(response?.properties) ? response.properties : undefined;
  if (props !== undefined && props.output !== undefined) {
    const s = resolveSchema(doc, props.output);
    if (s !== undefined) return s;
  }
  const schemas = isRecord(doc.components) ? doc.components.schemas : undefined;
  if (!isRecord(schemas)) return undefined;
  if (mode === 'train') {
    const t = resolveSchema(doc, schemas.TrainingOutput);
    if (t !== undefined) return t;
  }
  return resolveSchema(doc, schemas.Output);
}

function trimExt(p: string): string {
  const ext = extname(p);
  return ext === '' ? p : p.slice(0, -ext.length);
}

/** Destination of a decoded file: the -o value as given when it has an extension, else + the MIME's. */
function fileDestination(base: string, mimeType: string, explicit: boolean): string {
  if (explicit && extname(basename(base)) !== '') return base;
  return base + extensionForMimeType(mimeType);
}

/** Destination of element `i` of a list of files: output.0.png, or foo.0.png for -o foo.png. */
function itemDestination(base: string, i: number, mimeType: string, explicit: boolean): string {
  const ext = explicit ? extname(basename(base)) : '';
  if (ext !== '') return `${trimExt(base)}.${i}${ext}`;
  return `${base}.${i}${extensionForMimeType(mimeType)}`;
}

function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

function uriAction(value: unknown, dest: string, explicit: boolean): OutputAction {
  if (typeof value !== 'string') {
    throw new CogError(
      `Failed to convert prediction output to a file: expected a URI string, got ${pretty(value)}`,
    );
  }
  const decoded = decodeDataUrl(value);
  if (decoded === undefined) {
    // an uploaded file (--upload-url) or another URL: show it
    return { kind: 'print', text: value };
  }
  return { kind: 'file', path: fileDestination(dest, decoded.mimeType, explicit), data: decoded.data };
}

function isStringSchema(s: JsonSchema | undefined): boolean {
  return s !== undefined && schemaTypes(s).includes('string');
}

/**
 * The files a Path output (a data URL) or a list of them makes: `dest` + the MIME type's extension
 * (output.png), or for a list dest.0.png, dest.1.png, … (with `explicit`, an extension in `dest` is
 * kept: -o foo.png). A URL that is no data URL (an upload's) is printed. Undefined for other outputs.
 */
function fileOutputActions(
  output: unknown,
  schema: OpenApiDoc | undefined,
  outSchema: JsonSchema | undefined,
  dest: string,
  explicit: boolean,
): OutputAction[] | undefined {
  const items = outSchema === undefined ? undefined : resolveSchema(schema, outSchema.items);
  const isArray = outSchema !== undefined && schemaTypes(outSchema).includes('array');
  // Path / File
  if (
    isUriSchema(outSchema) ||
    (outSchema === undefined && typeof output === 'string' && output.startsWith('data:'))
  ) {
    return [uriAction(output, dest, explicit)];
  }

  // list[Path], Iterator[Path]
  const untypedFileList =
    outSchema === undefined &&
    Array.isArray(output) &&
    output.length > 0 &&
    output.every((o) => typeof o === 'string' && o.startsWith('data:'));
  if ((isArray && isUriSchema(items)) || untypedFileList) {
    if (!Array.isArray(output)) {
      throw new CogError(`Failed to decode output: expected a list of files, got ${pretty(output)}`);
    }
    return output.map((item: unknown, i) => {
      if (typeof item === 'string') {
        const decoded = decodeDataUrl(item);
        if (decoded !== undefined) {
          return {
            kind: 'file',
            path: itemDestination(dest, i, decoded.mimeType, explicit),
            data: decoded.data,
          };
        }
      }
      return uriAction(item, `${dest}.${i}`, false);
    });
  }
  return undefined;
}

/**
 * What a prediction that did not succeed says: its status and the model server's error, without the
 * "Prediction failed:" coglet starts that text with (twice: "Prediction failed: Prediction failed:
 * ValueError: …"), which the status already says.
 */
/** A response's `error` as text: a string as it is, anything else (a server's own shape) as JSON. */
export function errorText(error: unknown): string {
  if (error === undefined || error === null) return '';
  return typeof error === 'string' ? error : JSON.stringify(error);
}

export function failureMessage(response: Pick<PredictionResponse, 'status' | 'error'>): string {
  const error = errorText(response.error).replace(/^(?:Prediction failed:\s*)+/i, '');
  return `Prediction failed with status "${response.status}"${error === '' ? '' : `: ${error}`}`;
}

/**
 * Plans what to do with a prediction response:
 * - a failed/canceled status throws "Prediction failed with status …" with the error text;
 * - a URI output (string, format uri) given as a data URL is written to -o, default "output" + an
 *   extension from the MIME type; a list of URIs to output.0.ext, output.1.ext, …; http(s) URLs are
 *   printed;
 * - a string is printed raw (or written to -o); an iterator with x-cog-array-display concatenate
 *   is printed joined;
 * - anything else is printed as 2-space JSON (or written to -o).
 */
export function planOutputs(
  response: PredictionResponse,
  schema: OpenApiDoc | undefined,
  opts: PlanOptions = {},
): OutputAction[] {
  if (response.status !== 'succeeded')
    throw new CogError(`${failureMessage(response)}${opts.failureDetail ?? ''}`, { hint: wholeOutputHint });
  const output = response.output;
  if (output === undefined || output === null) return [{ kind: 'warn', text: 'No output generated' }];

  const given = (opts.outputPath ?? '').replace(/^@/, '');
  const intoDirectory = given.endsWith('/');
  // in a directory, files are named as without -o; text and JSON are written as files all the same
  const explicit = given !== '' && !intoDirectory;
  const dest = intoDirectory ? `${given}output` : explicit ? given : 'output';
  const outSchema = outputSchemaOf(schema, opts.mode ?? 'predict');
  const isArray = outSchema !== undefined && schemaTypes(outSchema).includes('array');

  const textOrFile = (text: string, extension = '.txt'): OutputAction[] =>
    explicit || intoDirectory
      ? [{ kind: 'file', path: intoDirectory ? dest + extension : dest, data: Buffer.from(text, 'utf8') }]
      : [{ kind: 'print', text }];

  const files = fileOutputActions(output, schema, outSchema, dest, explicit);
  if (files) return files;

  // Iterator[str] / ConcatenateIterator[str]
  if (
    isArray &&
    outSchema?.['x-cog-array-display'] === 'concatenate' &&
    Array.isArray(output) &&
    output.every((o) => typeof o === 'string')
  ) {
    return textOrFile(output.join(''));
  }

  if (typeof output === 'string' && (isStringSchema(outSchema) || outSchema === undefined)) {
    return textOrFile(output);
  }
  return textOrFile(pretty(output), '.json');
}

/**
 * `--json` mode, as upstream's: the whole response, indented, printed — or written to -o (a directory:
 * its output.json), with a warning when that name does not end in .json; file outputs are written
 * next to it (output.png, or NAME.png for -o NAME.json; a list as NAME.0.png, …) and the JSON holds
 * their paths instead of data URLs. Exit code 1 when the prediction did not succeed.
 */
export function planJsonMode(
  response: PredictionResponse,
  schema: OpenApiDoc | undefined,
  opts: Pick<PlanOptions, 'outputPath' | 'mode'> = {},
): { actions: OutputAction[]; exitCode: 0 | 1 } {
  const given = (opts.outputPath ?? '').replace(/^@/, '');
  const jsonPath = given === '' ? 'output.json' : given.endsWith('/') ? `${given}output.json` : given;
  const actions: OutputAction[] = [];
  let output = response.output ?? null;
  if (response.status === 'succeeded' && output !== null) {
    const outSchema = outputSchemaOf(schema, opts.mode ?? 'predict');
    const files = fileOutputActions(output, schema, outSchema, trimExt(jsonPath), false);
    if (files) {
      actions.push(...files.filter((a) => a.kind === 'file'));
      // each file's path in place of its data URL (a URL that was printed stays as it is)
      const shown = files.map((a) => (a.kind === 'file' ? a.path : a.kind === 'print' ? a.text : null));
      output = Array.isArray(output) ? shown : (shown[0] ?? null);
    }
  }
  const shown: Record<string, unknown> = { status: response.status, output, error: response.error ?? null };
  if (response.metrics !== undefined) shown.metrics = response.metrics;
  const text = pretty(shown);
  if (given === '') actions.push({ kind: 'print', text });
  else {
    if (extname(jsonPath) !== '.json')
      actions.push({
        kind: 'warn',
        text: `--output value does not have a .json suffix: ${basename(jsonPath)}`,
      });
    actions.push({ kind: 'file', path: jsonPath, data: Buffer.from(`${text}\n`, 'utf8') });
  }
  return { actions, exitCode: response.status === 'succeeded' ? 0 : 1 };
}

export interface WriteOptions {
  /** directory relative paths are resolved against */
  readonly cwd: string;
  /** receives notes meant for stderr: "Written output to: <path>" and warn actions */
  readonly onNote?: (line: string) => void;
  /** -o named a directory (`DIR/`): the files' directory is made when it does not exist */
  readonly makeDirectory?: boolean;
}

function expandHome(p: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return join(homedir(), p.slice(2));
  return p;
}

/**
 * The -o value for the plan, checked before the model is built and run: an existing directory is
 * taken as one (the outputs go in it, see PlanOptions), and a file must be in a directory that exists.
 * A directory named with a trailing `/` is made when the outputs are written.
 */
export async function checkOutputPath(value: string, cwd: string): Promise<string> {
  const given = value.replace(/^@/, '');
  if (given === '') return value;
  if (given.endsWith('/')) {
    await checkDirectoryToMake(value, resolve(cwd, expandHome(given)));
    return value;
  }
  const target = resolve(cwd, expandHome(given));
  const isDirectory = (await stat(target).catch(() => undefined))?.isDirectory() === true;
  // the outputs go in the directory itself, or next to the file named
  const dir = isDirectory ? target : dirname(target);
  const problem = await directoryProblem(dir);
  if (problem?.kind === 'missing')
    throw new CogError(`-o ${value}: the directory ${dir} does not exist`, {
      hint: `create it first (mkdir -p ${dir}), or write the output into a directory that exists`,
    });
  if (problem?.kind === 'file')
    throw new CogError(`-o ${value}: ${problem.path} is a file, not a directory`, {
      hint: 'choose another path with -o, e.g. -o output.json or -o outputs/ (made when missing)',
    });
  if (problem?.kind === 'unwritable')
    throw new CogError(`-o ${value}: cannot write files in ${dir} (${problem.code})`, {
      hint: 'choose another path with -o, in a directory you can write to',
    });
  return isDirectory ? `${value}/` : value;
}

/** -o DIR/: DIR, or the nearest of its parents that exists, must be a directory cog can write in. */
async function checkDirectoryToMake(value: string, dir: string): Promise<void> {
  let problem = await directoryProblem(dir);
  let existing = dir;
  while (problem?.kind === 'missing' && dirname(existing) !== existing) {
    existing = dirname(existing);
    problem = await directoryProblem(existing);
  }
  if (problem?.kind === 'file')
    throw new CogError(`-o ${value}: ${problem.path} is a file, not a directory`, {
      hint: 'choose another directory with -o DIR/, or a file name, e.g. -o output.png',
    });
  if (problem?.kind === 'unwritable')
    throw new CogError(
      existing === dir
        ? `-o ${value}: cannot write files in ${dir} (${problem.code})`
        : `-o ${value}: cannot make ${dir}: cannot write in ${existing} (${problem.code})`,
      { hint: 'choose another path with -o, in a directory you can write to' },
    );
}

/** A file written under a temporary name next to its target, to be renamed into place. */
interface StagedFile {
  readonly target: string;
  readonly tmp: string;
}

function writeFailure(target: string, err: unknown): CogError {
  const code = isRecord(err) && typeof err.code === 'string' ? err.code : '';
  const why =
    code === 'ENOENT'
      ? 'its directory does not exist'
      : code === 'EACCES' || code === 'EPERM'
        ? 'its directory is not writable'
        : err instanceof Error
          ? err.message
          : String(err);
  return new CogError(`Failed to write output ${target}: ${why}`, {
    hint: 'choose another output path with -o',
    cause: err,
  });
}

async function stageFile(target: string, data: Buffer): Promise<StagedFile> {
  const existing = await stat(target).catch(() => undefined);
  if (existing?.isDirectory() === true) {
    throw new CogError(`Output path ${target} is a directory`, {
      hint: 'pass a file name with -o, e.g. -o out.png',
    });
  }
  const tmp = join(
    dirname(target),
    `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    await writeFile(tmp, data);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw writeFailure(target, err);
  }
  return { target, tmp };
}

const discard = (staged: readonly StagedFile[]) =>
  Promise.all(staged.map((file) => unlink(file.tmp).catch(() => undefined)));

/**
 * Carries out a plan: every file is first written under a temporary name in its directory, then all
 * are renamed into place, so a file that cannot be written leaves none of the plan's files (a list
 * output is written whole or not at all); relative paths are resolved against cwd. Returns the text to
 * print on stdout: the print actions, each followed by a newline ("" when there is nothing to print).
 */
export async function writeOutputs(plan: readonly OutputAction[], opts: WriteOptions): Promise<string> {
  const staged: StagedFile[] = [];
  try {
    for (const action of plan) {
      if (action.kind !== 'file') continue;
      const target = resolve(opts.cwd, expandHome(action.path));
      if (opts.makeDirectory)
        await mkdir(dirname(target), { recursive: true }).catch((err: unknown) => {
          throw new CogError(`Failed to make the output directory ${dirname(target)}: ${String(err)}`, {
            hint: 'choose another directory with -o DIR/',
            cause: err,
          });
        });
      staged.push(await stageFile(target, action.data));
    }
  } catch (err) {
    await discard(staged);
    throw err;
  }
  let text = '';
  let next = 0;
  for (const action of plan) {
    switch (action.kind) {
      case 'print':
        text += `${action.text}\n`;
        break;
      case 'warn':
        opts.onNote?.(action.text);
        break;
      case 'file': {
        const file = staged[next++] as StagedFile;
        try {
          await rename(file.tmp, file.target);
        } catch (err) {
          await discard(staged.slice(next - 1));
          throw writeFailure(file.target, err);
        }
        opts.onNote?.(`Written output to: ${file.target}`);
        break;
      }
    }
  }
  return text;
}
