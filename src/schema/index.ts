/**
 * Static OpenAPI schema generation for Cog models: reads the predictor's Python source (without
 * running Python) and produces the document Cog's runtime serves at GET /openapi.json and uses to
 * validate inputs. Mirrors upstream Cog's pkg/schema generator.
 */
import { readFileSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import {
  analyzeMetadata,
  analyzePredictor,
  Analyzer,
  type FileLoader,
  type Mode,
  type PredictorInfo,
  type PredictorMetadata,
} from './analyze.js';
import { SchemaError } from './errors.js';
import { buildOpenApi, mergeSchemas } from './openapi.js';
import { deepSortKeys, type JsonObject } from './types.js';

export { SchemaError } from './errors.js';
export type { FileLoader, Mode, PredictorInfo, PredictorMetadata } from './analyze.js';
export type { JsonObject, JsonValue } from './types.js';

export interface SchemaFromSourceOptions {
  /** the Cog CLI version written to info.version (default "0.0.0") */
  cogVersion?: string;
  /** reads other project files for cross-file imports (`from .types import Output`); paths are relative to the project root */
  loadFile?: FileLoader;
}

/**
 * Pure core: the OpenAPI schema for `className` (a class with run()/predict()/train(), or a
 * module-level function) defined in `source`. `fileName` is used in error messages and as the
 * module's own path for relative imports.
 */
export function schemaFromSource(
  source: string,
  fileName: string,
  className: string,
  mode: Mode,
  options: SchemaFromSourceOptions = {},
): JsonObject {
  const info = predictorInfoFromSource(source, fileName, className, mode, options.loadFile);
  return buildOpenApi(info, options.cogVersion ?? '0.0.0');
}

/** The extracted signature (inputs and output) without building the OpenAPI document. */
export function predictorInfoFromSource(
  source: string,
  fileName: string,
  className: string,
  mode: Mode,
  loadFile: FileLoader = () => undefined,
): PredictorInfo {
  const analyzer = new Analyzer(loadFile);
  return analyzePredictor(analyzer, source, fileName, className, mode);
}

/** The target's async-ness and @cog.concurrent(max) (see PredictorMetadata), without its schema. */
export function predictorMetadataFromSource(
  source: string,
  fileName: string,
  className: string,
  mode: Mode,
  loadFile: FileLoader = () => undefined,
): PredictorMetadata {
  return analyzeMetadata(new Analyzer(loadFile), source, fileName, className, mode);
}

export interface GenerateOptions {
  projectDir: string;
  /** predictor reference from cog.yaml `run`/`predict`, e.g. 'predict.py:Predictor' */
  predict?: string | undefined;
  /** trainer reference from cog.yaml `train`, e.g. 'train.py:Trainer' */
  train?: string | undefined;
  /** written to info.version */
  cogVersion: string;
}

/** Splits 'predict.py:Predictor' into file and name. */
export function parseRef(ref: string): { file: string; name: string } {
  const colon = ref.indexOf(':');
  const file = colon < 0 ? '' : ref.slice(0, colon);
  const name = colon < 0 ? '' : ref.slice(colon + 1);
  if (file === '' || name === '' || name.includes(':')) {
    throw new SchemaError(
      'invalid-ref',
      `invalid predict reference '${ref}' — expected format: file.py:ClassName or file.py:function_name`,
    );
  }
  return { file, name };
}

/**
 * Generates the schema for a project: predict and/or train. With both set, the train schema's
 * paths and components are merged into the predict schema (keys sorted throughout, as upstream's
 * merge round-trips through Go maps).
 */
export async function generateOpenApiSchema(options: GenerateOptions): Promise<JsonObject> {
  const { projectDir, predict, train, cogVersion } = options;
  if (predict === undefined && train === undefined) {
    throw new SchemaError('invalid-ref', 'no predict or train reference found in cog.yaml', {
      hint: "set `run: 'predict.py:Predictor'` (or `train:`) in cog.yaml",
    });
  }
  const loadFile = projectLoader(projectDir);
  const one = async (ref: string, mode: Mode): Promise<JsonObject> => {
    const { file, name, source } = await readPredictor(projectDir, ref);
    return schemaFromSource(source, file, name, mode, { cogVersion, loadFile });
  };
  if (train === undefined) return one(predict ?? '', 'predict');
  if (predict === undefined) return one(train, 'train');
  const merged = mergeSchemas(await one(predict, 'predict'), await one(train, 'train'));
  return deepSortKeys(merged) as JsonObject;
}

/** Reads the metadata of the predictor (or trainer) `ref` names in a project. */
export async function readPredictorMetadata(
  projectDir: string,
  ref: string,
  mode: Mode,
): Promise<PredictorMetadata> {
  const { file, name, source } = await readPredictor(projectDir, ref);
  return predictorMetadataFromSource(source, file, name, mode, projectLoader(projectDir));
}

/** The source of the file a reference names, with the file (slash-separated) and the class/function name. */
async function readPredictor(
  projectDir: string,
  ref: string,
): Promise<{ file: string; name: string; source: string }> {
  const { file, name } = parseRef(ref);
  const path = safeJoin(projectDir, file);
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (e) {
    const { message, hint } = await unreadablePredictor(e, path, projectDir, file, ref);
    throw new SchemaError('file-not-found', message, { file, ...(hint ? { hint } : {}) });
  }
  return { file: normalize(file).split(sep).join('/'), name, source };
}

/** Why the predictor's source could not be read: missing, a link to nothing (named), or unreadable. */
async function unreadablePredictor(
  err: unknown,
  path: string,
  projectDir: string,
  file: string,
  ref: string,
): Promise<{ message: string; hint?: string }> {
  const where = `cog.yaml's reference "${ref}"`;
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
    return { message: `failed to read predictor source ${file} (${where}): ${(err as Error).message}` };
  // a link to nothing is in the project, yet reads as missing: say where it points
  const target = await readlink(path).catch(() => undefined);
  if (target !== undefined)
    return {
      message: `it is a link to ${target}, which does not exist (${where})`,
      hint: `point ${file} at the predictor's source, or fix the reference in cog.yaml`,
    };
  return {
    message: `no such file in the project directory ${projectDir} (${where})`,
    hint: "fix the reference in cog.yaml; the project directory is cog.yaml's own, or the working directory for a relative -f",
  };
}

function safeJoin(root: string, rel: string): string {
  const n = normalize(rel);
  if (isAbsolute(n) || n === '..' || n.startsWith(`..${sep}`)) {
    throw new SchemaError('invalid-ref', `predictor file '${rel}' must be inside the project directory`);
  }
  return join(root, n);
}

/** Reads a project-relative file's text; undefined when it is missing, unreadable or outside `root`. */
export function projectLoader(root: string): FileLoader {
  return (rel) => {
    try {
      return readFileSync(safeJoin(root, rel), 'utf8');
    } catch {
      return undefined;
    }
  };
}
