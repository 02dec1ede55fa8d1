import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { CogError } from '../../src/errors.js';
import {
  extensionForMimeType,
  format422,
  formatValidationErrors,
  inputComponent,
  inputValidationError,
  mimeTypeForPath,
  parseInputFlags,
  parseJsonInput,
  problemsFrom422,
  validateInputs,
  type OpenApiDoc,
} from '../../src/runtime/inputs.js';
import {
  checkOutputPath,
  decodeDataUrl,
  planJsonMode,
  outputSchemaOf,
  planOutputs,
  writeOutputs,
  type OutputAction,
} from '../../src/runtime/outputs.js';

/** An OpenAPI doc shaped like fixtures/schema/*.expected.json: components + the /predictions (or /trainings) response. */
function openapi(
  input: Record<string, unknown>,
  output: Record<string, unknown>,
  extra: Record<string, unknown> = {},
  mode: 'predict' | 'train' = 'predict',
): OpenApiDoc {
  const [inName, outName, respName, endpoint] =
    mode === 'train'
      ? ['TrainingInput', 'TrainingOutput', 'TrainingResponse', '/trainings']
      : ['Input', 'Output', 'PredictionResponse', '/predictions'];
  return {
    openapi: '3.0.2',
    components: {
      schemas: {
        [inName]: { title: inName, type: 'object', ...input },
        [outName]: { title: 'Output', ...output },
        [respName]: {
          title: respName,
          type: 'object',
          properties: {
            status: { title: 'Status', type: 'string' },
            output: { $ref: `#/components/schemas/${outName}` },
          },
        },
        ...extra,
      },
    },
    paths: {
      [endpoint]: {
        post: {
          responses: {
            '200': {
              content: { 'application/json': { schema: { $ref: `#/components/schemas/${respName}` } } },
              description: 'Successful Response',
            },
          },
        },
      },
    },
  };
}

/** The Input of fixtures/schema/scalars.expected.json (trimmed) plus list/union/path fields. */
const scalars = openapi(
  {
    properties: {
      prompt: { maxLength: 500, minLength: 1, title: 'Prompt', type: 'string', 'x-order': 0 },
      num_steps: { default: 25, maximum: 100, minimum: 1, title: 'Num Steps', type: 'integer', 'x-order': 2 },
      guidance: { default: 7.5, maximum: 20, minimum: -10, title: 'Guidance', type: 'number', 'x-order': 3 },
      enabled: { default: true, title: 'Enabled', type: 'boolean', 'x-order': 5 },
      seed: { title: 'Seed', type: 'integer', 'x-order': 6 },
      scheduler: { allOf: [{ $ref: '#/components/schemas/scheduler' }], default: 'K_EULER', 'x-order': 7 },
      width: { allOf: [{ $ref: '#/components/schemas/width' }], default: 512, 'x-order': 9 },
      code: { default: 'abc1', pattern: '^[a-z]+\\d*$', title: 'Code', type: 'string', 'x-order': 10 },
      token: { format: 'password', title: 'Token', type: 'string', writeOnly: true, 'x-order': 12 },
      options: { default: { a: [1, 2] }, title: 'Options', type: 'object', 'x-order': 14 },
      tags: { default: ['a', 'b'], items: { type: 'string' }, title: 'Tags', type: 'array', 'x-order': 15 },
      weights: { items: { type: 'number' }, nullable: true, title: 'Weights', type: 'array', 'x-order': 16 },
      either: { anyOf: [{ type: 'integer' }, { type: 'string' }], title: 'Either', 'x-order': 17 },
      num_or_bool: { anyOf: [{ type: 'integer' }, { type: 'boolean' }], title: 'Num Or Bool', 'x-order': 18 },
      image: { format: 'uri', title: 'Image', type: 'string', 'x-order': 19 },
      extra: { items: { format: 'uri', type: 'string' }, title: 'Extra', type: 'array', 'x-order': 20 },
    },
    required: ['prompt', 'seed', 'token'],
  },
  { type: 'string' },
  {
    scheduler: { enum: ['DDIM', 'K_EULER', 'PNDM'], title: 'scheduler', type: 'string' },
    width: { enum: [256, 512, 768], title: 'width', type: 'integer' },
  },
);

const noFiles = { cwd: '/nowhere', mode: 'predict' as const };

describe('parseInputFlags', () => {
  test('coerces int, float, bool, dict, list and choices by the schema', async () => {
    const got = await parseInputFlags(
      [
        'prompt=a cat',
        'num_steps=30',
        'guidance=-2.5',
        'enabled=false',
        'seed=42',
        'scheduler=DDIM',
        'width=768',
        'options={"x": {"y": [1, 2]}}',
        'tags=["p", "q"]',
        'weights=0.5',
      ],
      scalars,
      noFiles,
    );
    assert.deepEqual(got, {
      prompt: 'a cat',
      num_steps: 30,
      guidance: -2.5,
      enabled: false,
      seed: 42,
      scheduler: 'DDIM',
      width: 768,
      options: { x: { y: [1, 2] } },
      tags: ['p', 'q'],
      weights: [0.5],
    });
  });

  test('JSON list literals have their items coerced; repeated names build an array', async () => {
    const got = await parseInputFlags(['weights=["1", 2.5]', 'tags=a', 'tags=b', 'tags=c'], scalars, noFiles);
    assert.deepEqual(got, { weights: [1, 2.5], tags: ['a', 'b', 'c'] });
    const repeatedNumbers = await parseInputFlags(['weights=1', 'weights=2.25'], scalars, noFiles);
    assert.deepEqual(repeatedNumbers, { weights: [1, 2.25] });
  });

  test('unions are tried string-first; non-string unions pick the first fitting type', async () => {
    assert.deepEqual(await parseInputFlags(['either=5'], scalars, noFiles), { either: '5' });
    assert.deepEqual(await parseInputFlags(['num_or_bool=5'], scalars, noFiles), { num_or_bool: 5 });
    assert.deepEqual(await parseInputFlags(['num_or_bool=true'], scalars, noFiles), { num_or_bool: true });
  });

  test('values that do not fit stay strings for validation to report', async () => {
    const got = await parseInputFlags(
      ['num_steps=many', 'guidance=1e400x', 'enabled=maybe'],
      scalars,
      noFiles,
    );
    assert.deepEqual(got, { num_steps: 'many', guidance: '1e400x', enabled: 'maybe' });
    assert.deepEqual(
      validateInputs({ prompt: 'x', seed: 1, token: 't', ...got }, scalars, 'predict').map((p) => p.field),
      ['num_steps', 'guidance', 'enabled'],
    );
  });

  test('surrounding double quotes are stripped', async () => {
    assert.deepEqual(await parseInputFlags(['prompt="hello world"', 'code="abc"'], scalars, noFiles), {
      prompt: 'hello world',
      code: 'abc',
    });
  });

  test('without a schema every value stays a string', async () => {
    assert.deepEqual(await parseInputFlags(['a=1', 'b=true', 'b=x'], undefined, noFiles), {
      a: '1',
      b: ['true', 'x'],
    });
  });

  test('@path becomes a base64 data URL with a MIME type from the extension', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cog-predict-io-'));
    try {
      await writeFile(join(dir, 'photo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
      await writeFile(join(dir, 'notes.weird'), 'hi');
      const got = await parseInputFlags(['image=@photo.png', 'extra=@notes.weird'], scalars, {
        cwd: dir,
        mode: 'predict',
      });
      assert.deepEqual(got, {
        image: 'data:image/png;base64,iVBORw==',
        extra: ['data:application/octet-stream;base64,aGk='],
      });
      const repeated = await parseInputFlags(['extra=@photo.png', 'extra=@notes.weird'], scalars, {
        cwd: dir,
        mode: 'predict',
      });
      assert.deepEqual(repeated.extra, [
        'data:image/png;base64,iVBORw==',
        'data:application/octet-stream;base64,aGk=',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('~ is expanded and a missing file is a CogError', async () => {
    const seen: string[] = [];
    const readFile = (p: string): Promise<Buffer> => {
      seen.push(p);
      return Promise.resolve(Buffer.from('x'));
    };
    const got = await parseInputFlags(['image=@~/in.JPG'], scalars, {
      ...noFiles,
      homeDir: '/home/me',
      readFile,
    });
    assert.deepEqual(seen, ['/home/me/in.JPG']);
    assert.equal(got.image, 'data:image/jpeg;base64,eA==');
    await assert.rejects(
      parseInputFlags(['image=@/does/not/exist.png'], scalars, noFiles),
      (err: unknown) => {
        assert.ok(err instanceof CogError);
        assert.match(err.message, /Failed to read file \/does\/not\/exist.png for input "image"/);
        return true;
      },
    );
  });

  test('unknown names list the valid ones; a flag without = is rejected with a hint', async () => {
    await assert.rejects(parseInputFlags(['promt=x'], scalars, noFiles), (err: unknown) => {
      assert.ok(err instanceof CogError);
      assert.match(
        err.message,
        /^unknown input "promt"; valid inputs are: code, either, enabled, extra, guidance/,
      );
      // the command's current name (cog predict is the deprecated one)
      assert.equal(err.hint, 'check the spelling; `cog run` accepts only the inputs the model declares');
      return true;
    });
    await assert.rejects(parseInputFlags(['b=1', 'a=2'], openapi({ properties: {} }, {}), noFiles), {
      message: 'unknown inputs "a", "b"; model does not accept inputs',
    });
    await assert.rejects(parseInputFlags(['prompt'], scalars, noFiles), (err: unknown) => {
      assert.ok(err instanceof CogError);
      assert.equal(err.message, "Failed to parse input 'prompt', expected format is 'name=value'");
      assert.match(err.hint ?? '', /-i name=value/);
      return true;
    });
  });

  test('train mode reads TrainingInput', async () => {
    const train = openapi(
      {
        properties: {
          dataset: { format: 'uri', title: 'Dataset', type: 'string', 'x-order': 0 },
          epochs: { default: 10, minimum: 1, title: 'Epochs', type: 'integer', 'x-order': 1 },
        },
        required: ['dataset'],
      },
      { type: 'object', properties: { weights: { format: 'uri', type: 'string' } } },
      {},
      'train',
    );
    assert.deepEqual(await parseInputFlags(['epochs=3'], train, { ...noFiles, mode: 'train' }), {
      epochs: 3,
    });
    assert.deepEqual(validateInputs({ epochs: 0 }, train, 'train'), [
      { field: 'dataset', message: 'required input is missing' },
      { field: 'epochs', message: 'must be greater than or equal to 1 (got 0)' },
    ]);
  });

  test("train mode never reads the predictor's Input (a schema without TrainingInput has no trainer)", async () => {
    const predictorOnly = openapi({ properties: { n: { title: 'N', type: 'integer', 'x-order': 0 } } }, {});
    assert.equal(inputComponent(predictorOnly, 'train'), undefined);
    assert.equal(inputComponent(predictorOnly, 'predict')?.title, 'Input');
    // not coerced by Input's integer: the value stays the text given
    assert.deepEqual(await parseInputFlags(['n=3'], predictorOnly, { ...noFiles, mode: 'train' }), {
      n: '3',
    });
  });
});

describe('parseJsonInput', () => {
  test('inline JSON, @file and stdin; "@" strings become data URLs', async () => {
    const files: Record<string, string> = {
      '/w/in.json': '{"prompt": "@cat.txt", "n": 2}',
      '/w/cat.txt': 'meow',
    };
    const readFile = (p: string): Promise<Buffer> => {
      const f = files[p];
      return f === undefined ? Promise.reject(new Error(`ENOENT ${p}`)) : Promise.resolve(Buffer.from(f));
    };
    const opts = { cwd: '/w', readFile, readStdin: () => Promise.resolve('{"s": ["@cat.txt", "plain"]}') };
    assert.deepEqual(await parseJsonInput('{"a": 1, "b": [1, 2], "c": "x"}', opts), {
      a: 1,
      b: [1, 2],
      c: 'x',
    });
    assert.deepEqual(await parseJsonInput('@in.json', opts), {
      prompt: 'data:text/plain;base64,bWVvdw==',
      n: 2,
    });
    assert.deepEqual(await parseJsonInput('-', opts), { s: ['data:text/plain;base64,bWVvdw==', 'plain'] });
    const stdin = Readable.from([Buffer.from('{"n":'), Buffer.from(' 1}')]);
    assert.deepEqual(await parseJsonInput('@-', { cwd: '/w', stdin }), { n: 1 });
    await assert.rejects(parseJsonInput('-', { cwd: '/w' }), /needs standard input/);
    await assert.rejects(parseJsonInput('[1]', opts), /must be an object, not array/);
    await assert.rejects(parseJsonInput('{oops', opts), /Failed to parse JSON from --json/);
    await assert.rejects(parseJsonInput('@missing.json', opts), /Failed to read JSON from file missing.json/);
  });
});

describe('validateInputs', () => {
  test('reports every problem per field, in schema order', () => {
    const problems = validateInputs(
      {
        prompt: '',
        num_steps: 500,
        guidance: 'high',
        scheduler: 'EULER',
        width: 300,
        code: 'ABC',
        tags: ['a', 3],
        bogus: 1,
        options: null,
      },
      scalars,
      'predict',
    );
    assert.deepEqual(problems, [
      { field: 'bogus', message: problems[0]?.message ?? '' },
      { field: 'prompt', message: 'must be at least 1 character long (got 0)' },
      { field: 'num_steps', message: 'must be less than or equal to 100 (got 500)' },
      { field: 'guidance', message: 'expected number, got string' },
      { field: 'seed', message: 'required input is missing' },
      { field: 'scheduler', message: 'must be one of: DDIM, K_EULER, PNDM (got EULER)' },
      { field: 'width', message: 'must be one of: 256, 512, 768 (got 300)' },
      { field: 'code', message: 'must match pattern ^[a-z]+\\d*$' },
      { field: 'token', message: 'required input is missing' },
      { field: 'options', message: 'must not be null (omit the input to use its default)' },
      { field: 'tags.1', message: 'expected string, got integer' },
    ]);
    assert.match(problems[0]?.message ?? '', /^unknown input; valid inputs are: code, either/);
  });

  test('valid inputs, integers vs floats, unions, maxLength', () => {
    const ok = { prompt: 'x', seed: 3, token: 't', guidance: 2, either: 'a', weights: [1, 2.5] };
    assert.deepEqual(validateInputs(ok, scalars, 'predict'), []);
    assert.deepEqual(validateInputs({ ...ok, seed: 1.5 }, scalars, 'predict'), [
      { field: 'seed', message: 'expected integer, got number' },
    ]);
    assert.deepEqual(validateInputs({ ...ok, either: [1] }, scalars, 'predict'), [
      { field: 'either', message: 'expected integer or string, got array' },
    ]);
    assert.deepEqual(validateInputs({ ...ok, prompt: 'x'.repeat(501) }, scalars, 'predict'), [
      { field: 'prompt', message: 'must be at most 500 characters long (got 501)' },
    ]);
    assert.deepEqual(validateInputs({ anything: 1 }, undefined, 'predict'), []);
  });

  test('-i text that does not convert is shown as given, with why it does not fit the input', async () => {
    const given = await parseInputFlags(
      [
        'prompt=x',
        'token=t',
        'seed=2.5',
        'num_steps=many',
        'guidance=high',
        'enabled=yes',
        'options=[1]',
        'weights=1',
        'weights=heavy',
        'num_or_bool=maybe',
        `width=${'9'.repeat(20)}`,
      ],
      scalars,
      noFiles,
    );
    assert.deepEqual(validateInputs(given, scalars, 'predict', { fromText: true }), [
      { field: 'num_steps', message: 'expected integer, got "many" (not a number)' },
      { field: 'guidance', message: 'expected number, got "high" (not a number)' },
      { field: 'enabled', message: 'expected boolean, got "yes" (not true or false)' },
      { field: 'seed', message: 'expected integer, got 2.5 (not a whole number)' },
      { field: 'width', message: `expected integer, got ${'9'.repeat(20)} (too large for an integer)` },
      { field: 'options', message: 'expected object, got "[1]" (not a JSON object)' },
      { field: 'weights.1', message: 'expected number, got "heavy" (not a number)' },
      {
        field: 'num_or_bool',
        message: 'expected integer or boolean, got "maybe" (not a number, not true or false)',
      },
    ]);
    // a whole number written as a decimal, and a one-value input given twice
    const twice = await parseInputFlags(
      ['prompt=x', 'token=t', 'seed=2.0', 'num_steps=1', 'num_steps=2'],
      scalars,
      noFiles,
    );
    assert.deepEqual(validateInputs(twice, scalars, 'predict', { fromText: true }), [
      { field: 'num_steps', message: 'expected integer, got 2 values (-i gave it 2 times; it takes one)' },
      {
        field: 'seed',
        message: 'expected integer, got 2.0 (write an integer without a decimal point or exponent)',
      },
    ]);
    // from --json a string is a string: its type is what is wrong
    assert.deepEqual(validateInputs({ prompt: 'x', token: 't', seed: '2.5' }, scalars, 'predict'), [
      { field: 'seed', message: 'expected integer, got string' },
    ]);
  });

  test('formats like upstream and carries a usage hint', () => {
    const text = formatValidationErrors([
      { field: 'seed', message: 'required input is missing' },
      { field: 'width', message: 'must be one of: 256, 512' },
    ]);
    assert.equal(
      text,
      'The inputs you passed could not be validated:\n - seed: required input is missing\n - width: must be one of: 256, 512',
    );
    const err = inputValidationError([{ field: 'seed', message: 'required input is missing' }]);
    assert.ok(err instanceof CogError);
    assert.match(err.hint ?? '', /cog run -i image=@photo.jpg/);
  });
});

describe('format422', () => {
  test('turns a runtime 422 into the per-field message', () => {
    const body = {
      detail: [
        { loc: ['body', 'input', 'seed'], msg: 'field required', type: 'value_error.missing' },
        { loc: ['body', 'input', 'tags', 1], msg: 'str type expected', type: 'type_error.str' },
      ],
    };
    assert.deepEqual(problemsFrom422(body), [
      { field: 'seed', message: 'field required' },
      { field: 'tags.1', message: 'str type expected' },
    ]);
    assert.equal(
      format422(body),
      'The inputs you passed could not be validated:\n - seed: field required\n - tags.1: str type expected',
    );
  });

  test('an unexpected body is shown as it is', () => {
    const body = { detail: [{ loc: ['query', 'x'], msg: 'bad', type: 't' }] };
    assert.equal(problemsFrom422(body), undefined);
    assert.match(
      format422(body, 'train'),
      /^\/trainings call returned status 422, and there was an unexpected message/,
    );
    assert.match(format422('nope'), /\n\nnope$/);
  });
});

const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]);
const pngUrl = `data:image/png;base64,${png.toString('base64')}`;
const wavUrl = `data:audio/wav;base64,${Buffer.from('RIFF').toString('base64')}`;
const ok = (output: unknown): { status: string; output: unknown; error: null } => ({
  status: 'succeeded',
  output,
  error: null,
});

describe('planOutputs', () => {
  test('str is printed raw; int and dict as pretty JSON', () => {
    assert.deepEqual(planOutputs(ok('hello\nworld'), openapi({}, { type: 'string' })), [
      { kind: 'print', text: 'hello\nworld' },
    ]);
    assert.deepEqual(planOutputs(ok(42), openapi({}, { type: 'integer' })), [{ kind: 'print', text: '42' }]);
    const objectOutput = openapi(
      {},
      { type: 'object', properties: { caption: { type: 'string' }, labels: { type: 'object' } } },
    );
    assert.deepEqual(planOutputs(ok({ caption: 'c', labels: { a: 1 } }), objectOutput), [
      { kind: 'print', text: '{\n  "caption": "c",\n  "labels": {\n    "a": 1\n  }\n}' },
    ]);
    assert.deepEqual(planOutputs(ok(['a', 'b']), openapi({}, { type: 'array', items: { type: 'string' } })), [
      { kind: 'print', text: '[\n  "a",\n  "b"\n]' },
    ]);
  });

  test('-o writes strings and JSON to the named file', () => {
    const strPlan = planOutputs(ok('hi'), openapi({}, { type: 'string' }), { outputPath: 'out.txt' });
    assert.deepEqual(strPlan, [{ kind: 'file', path: 'out.txt', data: Buffer.from('hi') }]);
    const intPlan = planOutputs(ok(7), openapi({}, { type: 'integer' }), { outputPath: 'n.json' });
    assert.deepEqual(intPlan, [{ kind: 'file', path: 'n.json', data: Buffer.from('7') }]);
  });

  test('Path: a data URL is decoded to output.<ext>, or the -o path', () => {
    const paths = openapi({}, { format: 'uri', type: 'string' });
    assert.deepEqual(planOutputs(ok(pngUrl), paths), [{ kind: 'file', path: 'output.png', data: png }]);
    assert.deepEqual(planOutputs(ok(pngUrl), paths, { outputPath: 'result.png' }), [
      { kind: 'file', path: 'result.png', data: png },
    ]);
    assert.deepEqual(planOutputs(ok(pngUrl), paths, { outputPath: 'out/result' }), [
      { kind: 'file', path: 'out/result.png', data: png },
    ]);
    assert.deepEqual(planOutputs(ok('https://example.com/x.png'), paths), [
      { kind: 'print', text: 'https://example.com/x.png' },
    ]);
    assert.throws(() => planOutputs(ok(3), paths), CogError);
  });

  test('list[Path] is written as output.0.ext, output.1.ext …', () => {
    const lists = openapi({}, { items: { format: 'uri', type: 'string' }, type: 'array' });
    assert.deepEqual(planOutputs(ok([pngUrl, wavUrl]), lists), [
      { kind: 'file', path: 'output.0.png', data: png },
      { kind: 'file', path: 'output.1.wav', data: Buffer.from('RIFF') },
    ]);
    assert.deepEqual(
      planOutputs(ok([pngUrl, pngUrl]), lists, { outputPath: 'frames.png' }).map((a) =>
        a.kind === 'file' ? a.path : a.kind,
      ),
      ['frames.0.png', 'frames.1.png'],
    );
    // iterator-frames: Iterator[Path]
    const frames = openapi(
      {},
      { items: { format: 'uri', type: 'string' }, type: 'array', 'x-cog-array-type': 'iterator' },
    );
    assert.equal(planOutputs(ok([pngUrl]), frames)[0]?.kind, 'file');
  });

  test('-o DIR/ puts the outputs in DIR under their default names (it wrote a file named DIR/.txt)', () => {
    const paths = openapi({}, { format: 'uri', type: 'string' });
    assert.deepEqual(planOutputs(ok(pngUrl), paths, { outputPath: 'out/' }), [
      { kind: 'file', path: 'out/output.png', data: png },
    ]);
    const lists = openapi({}, { items: { format: 'uri', type: 'string' }, type: 'array' });
    assert.deepEqual(
      planOutputs(ok([pngUrl, wavUrl]), lists, { outputPath: '@out/' }).map((a) =>
        a.kind === 'file' ? a.path : a.kind,
      ),
      ['out/output.0.png', 'out/output.1.wav'],
    );
    assert.deepEqual(planOutputs(ok('hi'), openapi({}, { type: 'string' }), { outputPath: 'out/' }), [
      { kind: 'file', path: 'out/output.txt', data: Buffer.from('hi') },
    ]);
    assert.deepEqual(planOutputs(ok(7), openapi({}, { type: 'integer' }), { outputPath: 'out/' }), [
      { kind: 'file', path: 'out/output.json', data: Buffer.from('7') },
    ]);
  });

  test('ConcatenateIterator[str] is printed joined; a plain Iterator[str] as JSON', () => {
    const tokens = openapi(
      {},
      {
        items: { type: 'string' },
        type: 'array',
        'x-cog-array-display': 'concatenate',
        'x-cog-array-type': 'iterator',
      },
    );
    assert.deepEqual(planOutputs(ok(['Hel', 'lo', '!']), tokens), [{ kind: 'print', text: 'Hello!' }]);
    const iter = openapi({}, { items: { type: 'string' }, type: 'array', 'x-cog-array-type': 'iterator' });
    assert.deepEqual(planOutputs(ok(['a']), iter), [{ kind: 'print', text: '[\n  "a"\n]' }]);
  });

  test('a failed status is a CogError with the error text; no output is a warning', () => {
    assert.throws(
      () => planOutputs({ status: 'failed', output: null, error: 'CUDA out of memory' }, undefined),
      (err: unknown) => {
        assert.ok(err instanceof CogError);
        assert.equal(err.message, 'Prediction failed with status "failed": CUDA out of memory');
        assert.match(err.hint ?? '', /--progress plain/);
        return true;
      },
    );
    // what the model printed ends the error (the default view shows none of the server's output)
    assert.throws(
      () =>
        planOutputs({ status: 'failed', output: null, error: 'boom' }, undefined, {
          failureDetail: "\nthe model server's last line of output:\n  checking",
        }),
      (err: unknown) =>
        err instanceof CogError &&
        err.message ===
          `Prediction failed with status "failed": boom\nthe model server's last line of output:\n  checking`,
    );
    // coglet's own "Prediction failed:" (it writes it twice) is not said again
    assert.throws(
      () =>
        planOutputs(
          {
            status: 'failed',
            output: null,
            error: 'Prediction failed: Prediction failed: ValueError: kaboom',
          },
          undefined,
        ),
      (err: unknown) =>
        err instanceof CogError &&
        err.message === 'Prediction failed with status "failed": ValueError: kaboom',
    );
    // an error that is not text (a server's own shape) is shown as JSON, not "[object Object]"
    assert.throws(
      () => planOutputs({ status: 'failed', output: null, error: { detail: 'out of memory' } }, undefined),
      (err: unknown) =>
        err instanceof CogError &&
        err.message === 'Prediction failed with status "failed": {"detail":"out of memory"}',
    );
    assert.deepEqual(planOutputs(ok(null), openapi({}, { type: 'string' })), [
      { kind: 'warn', text: 'No output generated' },
    ]);
  });

  test('without a schema, data URLs are still files and other values are printed', () => {
    assert.deepEqual(planOutputs(ok(pngUrl), undefined), [{ kind: 'file', path: 'output.png', data: png }]);
    assert.deepEqual(planOutputs(ok('plain'), undefined), [{ kind: 'print', text: 'plain' }]);
    assert.deepEqual(planOutputs(ok({ a: 1 }), undefined), [{ kind: 'print', text: '{\n  "a": 1\n}' }]);
  });

  test('the output schema comes from the /predictions or /trainings response, else the component', () => {
    const train = openapi({}, { type: 'object', properties: { loss: { type: 'number' } } }, {}, 'train');
    assert.deepEqual(outputSchemaOf(train, 'train'), {
      title: 'Output',
      type: 'object',
      properties: { loss: { type: 'number' } },
    });
    const componentsOnly: OpenApiDoc = {
      components: { schemas: { Output: { type: 'string', format: 'uri' } } },
    };
    assert.deepEqual(outputSchemaOf(componentsOnly), { type: 'string', format: 'uri' });
    assert.equal(outputSchemaOf(undefined), undefined);
  });
});

describe('planJsonMode', () => {
  const printed = (r: { actions: readonly { kind: string; text?: string }[] }) =>
    JSON.parse(r.actions.find((a) => a.kind === 'print')?.text ?? 'null') as unknown;

  test('prints the whole response and exits 1 unless it succeeded', () => {
    const good = planJsonMode(
      { status: 'succeeded', output: 'x', error: null, metrics: { predict_time: 1.5 } },
      undefined,
    );
    assert.equal(good.exitCode, 0);
    assert.deepEqual(printed(good), {
      status: 'succeeded',
      output: 'x',
      error: null,
      metrics: { predict_time: 1.5 },
    });
    assert.ok(
      good.actions[0]?.kind === 'print' && good.actions[0].text.startsWith('{\n  "status": "succeeded",'),
    );
    const bad = planJsonMode({ status: 'failed', error: 'boom' }, undefined);
    assert.equal(bad.exitCode, 1);
    assert.deepEqual(printed(bad), { status: 'failed', output: null, error: 'boom' });
  });

  test('as upstream: file outputs are written next to the JSON, which holds their paths; -o takes the JSON', () => {
    const file = openapi({}, { type: 'string', format: 'uri' });
    const plain = planJsonMode(ok(pngUrl), file);
    assert.deepEqual(plain.actions[0], { kind: 'file', path: 'output.png', data: png });
    assert.deepEqual(printed(plain), { status: 'succeeded', output: 'output.png', error: null });

    const toFile = planJsonMode(
      ok([pngUrl, pngUrl]),
      openapi({}, { type: 'array', items: { type: 'string', format: 'uri' } }),
      {
        outputPath: 'out/result.json',
      },
    );
    assert.deepEqual(
      toFile.actions.map((a) => (a.kind === 'file' ? a.path : a.kind)),
      ['out/result.0.png', 'out/result.1.png', 'out/result.json'],
    );
    const json = toFile.actions[2];
    assert.ok(json?.kind === 'file');
    assert.deepEqual(JSON.parse(json.data.toString('utf8')), {
      status: 'succeeded',
      output: ['out/result.0.png', 'out/result.1.png'],
      error: null,
    });
    // a directory gets output.json; a name without .json is warned about
    assert.deepEqual(
      planJsonMode(ok('x'), undefined, { outputPath: 'dir/' }).actions.map((a) =>
        a.kind === 'file' ? a.path : a.kind,
      ),
      ['dir/output.json'],
    );
    assert.deepEqual(planJsonMode(ok('x'), undefined, { outputPath: 'res.txt' }).actions[0], {
      kind: 'warn',
      text: '--output value does not have a .json suffix: res.txt',
    });
  });
});

describe('writeOutputs', () => {
  test('writes files atomically and returns the printed text', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cog-predict-out-'));
    try {
      await writeFile(join(dir, 'output.0.png'), 'old contents');
      const plan: OutputAction[] = [
        { kind: 'file', path: 'output.0.png', data: png },
        { kind: 'file', path: join(dir, 'abs.txt'), data: Buffer.from('abs') },
        { kind: 'print', text: 'hello' },
        { kind: 'warn', text: 'careful' },
        { kind: 'print', text: '{}' },
      ];
      const notes: string[] = [];
      const text = await writeOutputs(plan, { cwd: dir, onNote: (line) => notes.push(line) });
      assert.equal(text, 'hello\n{}\n');
      assert.deepEqual(notes, [
        `Written output to: ${join(dir, 'output.0.png')}`,
        `Written output to: ${join(dir, 'abs.txt')}`,
        'careful',
      ]);
      assert.deepEqual(await readFile(join(dir, 'output.0.png')), png);
      assert.equal(await readFile(join(dir, 'abs.txt'), 'utf8'), 'abs');
      // no temp files are left behind
      assert.deepEqual((await readdir(dir)).sort(), ['abs.txt', 'output.0.png']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a missing directory or a directory target is a CogError and leaves nothing behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cog-predict-out-'));
    try {
      await assert.rejects(
        writeOutputs([{ kind: 'file', path: 'no/such/dir/x.png', data: png }], { cwd: dir }),
        {
          message: `Failed to write output ${join(dir, 'no/such/dir/x.png')}: its directory does not exist`,
        },
      );
      await mkdir(join(dir, 'sub'));
      await assert.rejects(
        writeOutputs([{ kind: 'file', path: 'sub', data: png }], { cwd: dir }),
        (err: unknown) => err instanceof CogError && /is a directory/.test(err.message),
      );
      assert.deepEqual(await readdir(dir), ['sub']);
      assert.deepEqual(await readdir(join(dir, 'sub')), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a list whose second file cannot be written leaves none of its files (nor an older one changed)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cog-predict-out-'));
    try {
      await writeFile(join(dir, 'output.0.png'), 'older');
      await mkdir(join(dir, 'output.1.png'));
      const notes: string[] = [];
      await assert.rejects(
        writeOutputs(
          [
            { kind: 'file', path: 'output.0.png', data: png },
            { kind: 'file', path: 'output.1.png', data: png },
          ],
          { cwd: dir, onNote: (line) => notes.push(line) },
        ),
        (err: unknown) => err instanceof CogError && /output\.1\.png is a directory/.test(err.message),
      );
      assert.deepEqual((await readdir(dir)).sort(), ['output.0.png', 'output.1.png'], 'no temporary left');
      assert.equal(await readFile(join(dir, 'output.0.png'), 'utf8'), 'older');
      assert.deepEqual(notes, []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('checkOutputPath', () => {
  test('an existing directory becomes DIR/; a file in a missing directory fails naming -o', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cog-predict-out-'));
    try {
      await mkdir(join(dir, 'sub'));
      assert.equal(await checkOutputPath('sub', dir), 'sub/');
      assert.equal(await checkOutputPath('@sub', dir), '@sub/');
      assert.equal(await checkOutputPath('sub/x.png', dir), 'sub/x.png');
      assert.equal(await checkOutputPath('out', dir), 'out', 'a new file (its extension comes later)');
      assert.equal(await checkOutputPath('new/', dir), 'new/', 'a directory made when writing');
      await assert.rejects(
        checkOutputPath('missing/x.png', dir),
        (err: unknown) =>
          err instanceof CogError &&
          err.message === `-o missing/x.png: the directory ${join(dir, 'missing')} does not exist` &&
          /mkdir -p/.test(err.hint ?? ''),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a file where the directory should be, or a directory that takes no files, fails before the run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cog-predict-out-'));
    try {
      await writeFile(join(dir, 'out.json'), '{}');
      for (const value of ['out.json/x.png', 'out.json/sub/x.png']) {
        await assert.rejects(
          checkOutputPath(value, dir),
          (err: unknown) =>
            err instanceof CogError &&
            err.message === `-o ${value}: ${join(dir, 'out.json')} is a file, not a directory` &&
            /choose another path with -o/.test(err.hint ?? '') &&
            !/mkdir/.test(err.hint ?? ''),
          value,
        );
      }
      // -o DIR/ too: a file named as the directory, or in its way
      for (const value of ['out.json/', 'out.json/sub/']) {
        await assert.rejects(
          checkOutputPath(value, dir),
          (err: unknown) =>
            err instanceof CogError &&
            err.message === `-o ${value}: ${join(dir, 'out.json')} is a file, not a directory`,
          value,
        );
      }
      await assert.rejects(
        checkOutputPath('/proc/new/', dir),
        (err: unknown) =>
          err instanceof CogError &&
          /^-o \/proc\/new\/: cannot make \/proc\/new: cannot write in \/proc \(E[A-Z]+\)$/.test(err.message),
      );
      // /proc takes no new files, even from root: said now, not after the model has run
      for (const [value, where] of [
        ['/proc/x.png', '/proc'],
        ['/proc', '/proc'],
        ['/proc/', '/proc'],
      ] as const) {
        await assert.rejects(
          checkOutputPath(value, dir),
          (err: unknown) =>
            err instanceof CogError &&
            new RegExp(`^-o ${value}: cannot write files in ${where} \\(E[A-Z]+\\)$`).test(err.message) &&
            /a directory you can write to/.test(err.hint ?? ''),
          value,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('writeOutputs makes the -o DIR/ directory when asked', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cog-predict-out-'));
    try {
      const plan = planOutputs(ok(pngUrl), openapi({}, { format: 'uri', type: 'string' }), {
        outputPath: 'made/',
      });
      await writeOutputs(plan, { cwd: dir, makeDirectory: true });
      assert.deepEqual(await readFile(join(dir, 'made', 'output.png')), png);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('MIME helpers', () => {
  test('map extensions and data URLs both ways', () => {
    assert.equal(mimeTypeForPath('a/b.JPEG'), 'image/jpeg');
    assert.equal(mimeTypeForPath('x.npy'), 'application/octet-stream');
    assert.equal(mimeTypeForPath('noext'), 'application/octet-stream');
    assert.equal(extensionForMimeType('image/jpeg'), '.jpg');
    assert.equal(extensionForMimeType('audio/x-wav'), '.wav');
    assert.equal(extensionForMimeType('text/plain; charset=utf-8'), '.txt');
    assert.equal(extensionForMimeType('application/x-unknown'), '');
    assert.deepEqual(decodeDataUrl('data:,a%20b'), {
      mimeType: 'text/plain;charset=US-ASCII',
      data: Buffer.from('a b'),
    });
    assert.equal(decodeDataUrl('https://x'), undefined);
  });
});
