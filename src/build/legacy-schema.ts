/**
 * The schema of a model whose cog SDK is pinned below 0.17: that SDK builds it at run time from pydantic
 * models, which static analysis cannot follow, so a full build asks the built image for it
 * (`python -m cog.command.openapi_schema`, as upstream's build does) and labels the image with it.
 */
import type { Gateway } from '../buildkit/gateway.js';
import { CogError } from '../errors.js';
import { dirname } from 'node:path/posix';
import { FileActions, type State, scratch } from '../llb/index.js';
import { openApiDocumentProblem } from './openapi-document.js';

/** Where the schema lands in the image, as the static schema does. */
const bundledSchemaPath = '/src/.cog/openapi_schema.json';

/** The step (and history entry) of the layer that writes the schema into the image. */
export const bundledSchemaStep = `write ${bundledSchemaPath}`;

/** `model` with the schema written at /src/.cog: one file op, so one layer. */
export function withBundledSchema(model: State, schema: string): State {
  const actions = new FileActions()
    .mkdir(dirname(bundledSchemaPath), { parents: true })
    .mkfile(bundledSchemaPath, schema, { mode: 0o644 });
  return model.file(actions, { name: bundledSchemaStep });
}

/** The SDK's schema command run in the built image; its output, errors and exit code kept in /out. */
export function legacySchemaProbe(model: State): State {
  return model
    .run({
      shell:
        'python -m cog.command.openapi_schema > /out/schema.json 2> /out/stderr.txt; echo $? > /out/status',
      cwd: '/src',
      mounts: [{ type: 'bind', dest: '/out', source: scratch() }],
      name: 'read the OpenAPI schema from the model (cog SDK below 0.17)',
    })
    .mount('/out');
}

/** The last lines of what the schema command wrote, for an error. */
function tail(text: string, lines = 12): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * The schema JSON text the probe (solved as `ref`) read from the model.
 * @throws CogError when the command failed or did not print an OpenAPI document
 */
export async function readLegacySchema(gw: Gateway, ref: string): Promise<string> {
  const read = async (path: string) => (await gw.readFile(ref, path)).toString('utf8');
  const [status, stdout, stderr] = await Promise.all([
    read('/status'),
    read('/schema.json'),
    read('/stderr.txt'),
  ]);
  const hint =
    'fix the predictor so that `python -m cog.command.openapi_schema` works in the image, or pin build.sdk_version 0.17 or later';
  if (status.trim() !== '0')
    throw new CogError(
      `the cog SDK in the image could not write the model's OpenAPI schema (exit ${status.trim()}):\n${tail(stderr || stdout)}`,
      { hint },
    );
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new CogError(
      `the cog SDK in the image printed no OpenAPI schema (not JSON):\n${tail(stdout)}${stderr ? `\n${tail(stderr)}` : ''}`,
      { hint: 'the predictor may print to standard output when imported; ' + hint },
    );
  }
  const problem = openApiDocumentProblem(doc);
  if (problem) throw new CogError(`the model's OpenAPI schema from the cog SDK: ${problem}`, { hint });
  return JSON.stringify(doc);
}
