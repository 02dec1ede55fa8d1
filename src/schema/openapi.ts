/**
 * Builds the OpenAPI 3.0.2 document that Cog bundles into an image (label run.cog.openapi_schema,
 * file /src/.cog/openapi_schema.json), in the shape upstream Cog's static generator produces:
 * the same components, paths and key order (Go's encoding/json: map keys sorted, ordered maps for
 * properties, components and paths).
 */
import { isDeepStrictEqual } from 'node:util';
import type { InputField, PredictorInfo } from './analyze.js';
import {
  inputTypeJson,
  primitiveJson,
  pyToJson,
  schemaTypeJson,
  sortKeys,
  titleCase,
  type JsonObject,
  type JsonValue,
} from './types.js';

function inputSchema(info: PredictorInfo): { input: JsonObject; enums: [string, JsonObject][] } {
  const properties: JsonObject = {};
  const required: string[] = [];
  const enums: [string, JsonObject][] = [];

  for (const field of info.inputs) {
    const prop: JsonObject = { 'x-order': field.order };
    if (field.choices !== undefined && field.choices.length > 0) {
      // choices become a separate enum component named after the parameter
      const typeStr = primitiveJson(field.fieldType.primitive).type;
      enums.push([
        field.name,
        sortKeys({
          title: field.name,
          description: 'An enumeration.',
          enum: field.choices.map(pyToJson),
          type: typeof typeStr === 'string' ? typeStr : 'string',
        }),
      ]);
      prop.allOf = [{ $ref: `#/components/schemas/${field.name}` }];
    } else {
      prop.title = titleCase(field.name);
      Object.assign(prop, inputTypeJson(field.inputType));
    }

    const nullable = isNullable(field);
    // a None default on a non-nullable field means "no default" (e.g. a seed generated at run time)
    const hasDefault = field.default !== undefined && (field.default.kind !== 'none' || nullable);
    const rep = field.fieldType.repetition;
    if (!hasDefault && (field.inputType.kind === 'union' || rep === 'required' || rep === 'repeated'))
      required.push(field.name);
    if (hasDefault && field.default !== undefined) prop.default = pyToJson(field.default);
    if (nullable) prop.nullable = true;
    if (field.description !== undefined) prop.description = field.description;
    if (field.ge !== undefined) prop.minimum = field.ge;
    if (field.le !== undefined) prop.maximum = field.le;
    if (field.minLength !== undefined) prop.minLength = field.minLength;
    if (field.maxLength !== undefined) prop.maxLength = field.maxLength;
    if (field.regex !== undefined) prop.pattern = field.regex;
    if (field.deprecated === true) prop.deprecated = true;
    if (field.accept !== undefined) prop['x-cog-accept'] = field.accept;
    properties[field.name] = sortKeys(prop);
  }

  const input: JsonObject = { properties };
  if (required.length > 0) input.required = required;
  input.title = 'Input';
  input.type = 'object';
  return { input, enums };
}

function isNullable(field: InputField): boolean {
  const rep = field.fieldType.repetition;
  if (rep === 'optional' || rep === 'optional-repeated' || field.inputType.nullable) return true;
  // `api_key: Secret = Input(default=None)` is an optional credential
  return field.fieldType.primitive === 'Secret' && rep === 'required' && field.default?.kind === 'none';
}

const okJson = (schema: JsonObject): JsonObject => ({
  content: { 'application/json': { schema } },
  description: 'Successful Response',
});
const validationError: JsonObject = {
  content: { 'application/json': { schema: { $ref: '#/components/schemas/HTTPValidationError' } } },
  description: 'Validation Error',
};

/** The full OpenAPI document for one mode. */
export function buildOpenApi(info: PredictorInfo, version: string): JsonObject {
  const train = info.mode === 'train';
  const names = train
    ? {
        endpoint: '/trainings',
        request: 'TrainingRequest',
        response: 'TrainingResponse',
        cancel: '/trainings/{training_id}/cancel',
        summary: 'Train',
        description: 'Run a single training on the model',
        op: 'train_trainings_post',
        cancelOp: 'cancel_trainings__training_id__cancel_post',
        cancelParam: 'training_id',
        input: 'TrainingInput',
        output: 'TrainingOutput',
      }
    : {
        endpoint: '/predictions',
        request: 'PredictionRequest',
        response: 'PredictionResponse',
        cancel: '/predictions/{prediction_id}/cancel',
        summary: 'Predict',
        description: 'Run a single prediction on the model',
        op: 'predict_predictions_post',
        cancelOp: 'cancel_predictions__prediction_id__cancel_post',
        cancelParam: 'prediction_id',
        input: 'Input',
        output: 'Output',
      };

  const { input, enums } = inputSchema(info);
  input.title = names.input;
  const inputRef = `#/components/schemas/${names.input}`;
  const outputRef = `#/components/schemas/${names.output}`;

  const schemas: JsonObject = {};
  schemas[names.input] = sortKeys(input);
  schemas[names.output] = schemaTypeJson(info.output, true);
  for (const [name, schema] of enums) schemas[name] = schema;
  schemas[names.request] = {
    properties: { id: { title: 'Id', type: 'string' }, input: { $ref: inputRef } },
    title: names.request,
    type: 'object',
  };
  schemas[names.response] = {
    properties: {
      completed_at: { format: 'date-time', title: 'Completed At', type: 'string' },
      created_at: { format: 'date-time', title: 'Created At', type: 'string' },
      error: { title: 'Error', type: 'string' },
      id: { title: 'Id', type: 'string' },
      input: { $ref: inputRef },
      logs: { title: 'Logs', type: 'string' },
      metrics: { title: 'Metrics', type: 'object' },
      output: { $ref: outputRef },
      started_at: { format: 'date-time', title: 'Started At', type: 'string' },
      status: { title: 'Status', type: 'string' },
      version: { title: 'Version', type: 'string' },
    },
    title: names.response,
    type: 'object',
  };
  schemas.Status = {
    description: 'An enumeration.',
    enum: ['starting', 'processing', 'succeeded', 'canceled', 'failed'],
    title: 'Status',
    type: 'string',
  };
  schemas.HTTPValidationError = {
    properties: {
      detail: { items: { $ref: '#/components/schemas/ValidationError' }, title: 'Detail', type: 'array' },
    },
    title: 'HTTPValidationError',
    type: 'object',
  };
  schemas.ValidationError = {
    properties: {
      loc: { items: { anyOf: [{ type: 'string' }, { type: 'integer' }] }, title: 'Location', type: 'array' },
      msg: { title: 'Message', type: 'string' },
      type: { title: 'Error Type', type: 'string' },
    },
    required: ['loc', 'msg', 'type'],
    title: 'ValidationError',
    type: 'object',
  };

  const mainOperation: JsonObject = {
    description: names.description,
    operationId: names.op,
    requestBody: {
      content: { 'application/json': { schema: { $ref: `#/components/schemas/${names.request}` } } },
    },
    responses: { '200': okJson({ $ref: `#/components/schemas/${names.response}` }), '422': validationError },
    summary: names.summary,
  };
  if (!train && info.streaming) mainOperation['x-cog-streaming'] = true;

  const paths: JsonObject = {
    '/': { get: { operationId: 'root__get', responses: { '200': okJson({}) }, summary: 'Root' } },
    '/health-check': {
      get: {
        operationId: 'healthcheck_health_check_get',
        responses: { '200': okJson({}) },
        summary: 'Healthcheck',
      },
    },
    [names.endpoint]: { post: sortKeys(mainOperation) },
    [names.cancel]: {
      post: {
        operationId: names.cancelOp,
        parameters: [
          {
            in: 'path',
            name: names.cancelParam,
            required: true,
            schema: { title: titleCase(names.cancelParam), type: 'string' },
          },
        ],
        responses: { '200': okJson({}), '422': validationError },
        summary: 'Cancel',
      },
    },
  };

  const spec: JsonObject = {
    components: { schemas },
    info: { title: 'Cog', version },
    openapi: '3.0.2',
    paths,
  };
  removeTitleNextToRef(spec);
  fixNullableAnyOf(spec);
  return spec;
}

/** OpenAPI 3.0 allows no siblings next to $ref. */
function removeTitleNextToRef(v: JsonValue): void {
  if (Array.isArray(v)) v.forEach(removeTitleNextToRef);
  else if (v !== null && typeof v === 'object') {
    if ('$ref' in v) delete v.title;
    Object.values(v).forEach(removeTitleNextToRef);
  }
}

/** {"anyOf": [{"type": T}, {"type": "null"}]} → {"type": T, "nullable": true} */
function fixNullableAnyOf(v: JsonValue): void {
  if (Array.isArray(v)) {
    v.forEach(fixNullableAnyOf);
    return;
  }
  if (v === null || typeof v !== 'object') return;
  Object.values(v).forEach(fixNullableAnyOf);
  const anyOf = v.anyOf;
  if (!Array.isArray(anyOf) || anyOf.length !== 2) return;
  let nonNull: JsonObject | undefined;
  let hasNull = false;
  for (const variant of anyOf) {
    if (variant === null || typeof variant !== 'object' || Array.isArray(variant)) return;
    if (variant.type === 'null') hasNull = true;
    else nonNull = variant;
  }
  if (hasNull && nonNull !== undefined) {
    delete v.anyOf;
    Object.assign(v, nonNull, { nullable: true });
    const sorted = sortKeys(v);
    for (const k of Object.keys(v)) delete v[k];
    Object.assign(v, sorted);
  }
}

/**
 * Merges a train schema into a predict schema: train paths and components are added when absent.
 * A train component whose name the predict schema already uses for something else (a `choices`
 * enum named after a parameter both sides have) is added as `TrainingInput.<name>` instead, and the
 * train side's references follow it, so each side keeps its own enum. Upstream keeps the
 * predictor's and the trainer's input then points at it; in train mode the runtime serves the
 * trainer's schema alone, where the enum is the trainer's.
 */
export function mergeSchemas(predict: JsonObject, train: JsonObject): JsonObject {
  const pComp = predict.components;
  const tComp = train.components;
  if (isObject(pComp) && isObject(tComp) && isObject(pComp.schemas) && isObject(tComp.schemas)) {
    const ps = pComp.schemas;
    const ts = tComp.schemas;
    const renames = new Map<string, string>();
    for (const [k, v] of Object.entries(ts)) {
      if (!(k in ps) || isDeepStrictEqual(ps[k], v)) continue;
      let name = `TrainingInput.${k}`;
      for (let i = 2; name in ps || name in ts; i++) name = `TrainingInput.${k}.${i}`;
      renames.set(k, name);
    }
    if (renames.size > 0) renameRefs(train, renames);
    for (const [k, v] of Object.entries(ts)) {
      const name = renames.get(k) ?? k;
      if (!(name in ps)) ps[name] = v;
    }
  }
  const pPaths = predict.paths;
  const tPaths = train.paths;
  if (isObject(pPaths) && isObject(tPaths)) {
    for (const [k, v] of Object.entries(tPaths)) if (!(k in pPaths)) pPaths[k] = v;
  }
  return predict;
}

/** Rewrites every `$ref` to a renamed component (old name → new name) in place. */
function renameRefs(v: JsonValue, renames: ReadonlyMap<string, string>): void {
  if (Array.isArray(v)) v.forEach((x) => renameRefs(x, renames));
  else if (v !== null && typeof v === 'object') {
    const ref = v.$ref;
    const prefix = '#/components/schemas/';
    if (typeof ref === 'string' && ref.startsWith(prefix)) {
      const to = renames.get(ref.slice(prefix.length));
      if (to !== undefined) v.$ref = prefix + to;
    }
    Object.values(v).forEach((x) => renameRefs(x, renames));
  }
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v);
}
