import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  generateOpenApiSchema,
  parseRef,
  predictorMetadataFromSource,
  readPredictorMetadata,
  SchemaError,
  schemaFromSource,
  type JsonObject,
} from '../../src/schema/index.js';
import { tokenize } from '../../src/schema/tokenizer.js';
import { tempDirsRemovedAfterTests, writeFiles } from '../support/temp-dirs.js';
import { validateInputs } from '../../src/runtime/inputs.js';
import { repoRoot } from '../support/testbed.js';
import { CogError } from '../../src/errors.js';

const dir = `${repoRoot}fixtures/schema/`;
const version = '0.1.0-test';
const tempDir = tempDirsRemovedAfterTests();
/** COG_UPDATE_GOLDEN=1 rewrites the *.expected.json files from the current output (then run `npx prettier --write fixtures/schema`) */
const update = process.env.COG_UPDATE_GOLDEN === '1';

async function golden(name: string, actual: JsonObject): Promise<void> {
  const path = `${dir}${name}.expected.json`;
  if (update) await writeFile(path, `${JSON.stringify(actual, null, 2)}\n`);
  const expected = JSON.parse(await readFile(path, 'utf8')) as unknown;
  assert.deepStrictEqual(actual, expected);
}

async function fromFixture(
  file: string,
  name: string,
  mode: 'predict' | 'train' = 'predict',
): Promise<JsonObject> {
  return schemaFromSource(await readFile(`${dir}${file}`, 'utf8'), file, name, mode, { cogVersion: version });
}

function schemas(s: JsonObject): Record<string, JsonObject> {
  return (s.components as { schemas: Record<string, JsonObject> }).schemas;
}

/** schema for an inline predictor source */
function inline(source: string, name = 'Predictor', mode: 'predict' | 'train' = 'predict'): JsonObject {
  return schemaFromSource(source, 'predict.py', name, mode, { cogVersion: version });
}

function inputOf(source: string, name = 'Predictor'): JsonObject {
  const s = schemas(inline(source, name));
  const input = s.Input;
  assert.ok(input !== undefined);
  return input;
}

/** The SchemaError `read` throws, checked: its message matches `pattern` and it has a hint. */
function schemaErrorOf(read: () => unknown, pattern: RegExp): SchemaError {
  let caught: unknown;
  try {
    read();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof SchemaError, `expected a SchemaError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  assert.ok(caught.hint !== undefined && caught.hint.length > 0);
  return caught;
}

function rejects(source: string, pattern: RegExp, name = 'Predictor'): SchemaError {
  return schemaErrorOf(() => inline(source, name), pattern);
}

describe('static OpenAPI schema: golden files', () => {
  const cases: [string, string, string, ('predict' | 'train')?][] = [
    ['hello', 'hello.py', 'Runner'],
    ['scalars', 'scalars.py', 'Predictor'],
    ['paths', 'paths.py', 'Predictor'],
    ['lists-paths', 'lists.py', 'ListOfPaths'],
    ['lists-strings', 'lists.py', 'ListOfStrings'],
    ['iterator-frames', 'iterators.py', 'Frames'],
    ['iterator-tokens', 'iterators.py', 'Tokens'],
    ['iterator-async', 'iterators.py', 'AsyncTokens'],
    ['output-object', 'output_object.py', 'Runner'],
    ['train', 'train.py', 'Trainer', 'train'],
    ['function', 'function.py', 'predict'],
  ];
  for (const [name, file, target, mode] of cases) {
    test(`${file}:${target}${mode === 'train' ? ' (train)' : ''}`, async () => {
      await golden(name, await fromFixture(file, target, mode));
    });
  }

  test('project: run() inherited from an imported base class, predict + train merged', async () => {
    const s = await generateOpenApiSchema({
      projectDir: `${dir}project`,
      predict: 'predict.py:Runner',
      train: 'train.py:train',
      cogVersion: version,
    });
    await golden('project-merged', s);
  });

  test('predict + train merged: an input with choices under the same name on both sides keeps its own enum', async () => {
    const project = await tempDir('cogts-enum-clash-');
    await writeFiles(project, {
      'predict.py':
        'from cog import BasePredictor, Input\n\nclass Predictor(BasePredictor):\n' +
        '    def predict(self, mode: str = Input(choices=["fast", "slow"], default="fast")) -> str:\n' +
        '        return mode\n',
      'train.py':
        'from cog import Input\n\n' +
        'def train(mode: str = Input(choices=["lora", "full"], default="lora")) -> str:\n' +
        '    return mode\n',
    });
    const s = await generateOpenApiSchema({
      projectDir: project,
      predict: 'predict.py:Predictor',
      train: 'train.py:train',
      cogVersion: version,
    });
    const c = schemas(s);
    const ref = (component: string): unknown =>
      (c[component]?.properties as Record<string, JsonObject>).mode?.allOf;
    assert.deepEqual(ref('Input'), [{ $ref: '#/components/schemas/mode' }]);
    assert.deepEqual(c.mode?.enum, ['fast', 'slow']);
    assert.deepEqual(ref('TrainingInput'), [{ $ref: '#/components/schemas/TrainingInput.mode' }]);
    assert.deepEqual(c['TrainingInput.mode'], {
      description: 'An enumeration.',
      enum: ['lora', 'full'],
      title: 'mode',
      type: 'string',
    });
    // what `cog train -i mode=full` checks before the model starts; the default is valid too
    assert.deepEqual(validateInputs({ mode: 'full' }, s, 'train', { fromText: true }), []);
    assert.deepEqual(validateInputs({ mode: 'lora' }, s, 'train', { fromText: true }), []);
    assert.notDeepEqual(validateInputs({ mode: 'full' }, s, 'predict', { fromText: true }), []);
  });

  test('relative imports in package modules are found from the importing file, as Python does', async () => {
    const project = await tempDir('cogts-relative-');
    await mkdir(join(project, 'pkg', 'sub'), { recursive: true });
    await writeFiles(project, {
      'pkg/mod.py':
        'from cog import BasePredictor\nfrom pkg.outtypes import Out\nfrom .sub.extra import Extra\n\n' +
        'class Predictor(BasePredictor):\n    def predict(self) -> Out:\n        ...\n\n' +
        'class Other(BasePredictor):\n    def predict(self) -> Extra:\n        ...\n',
      'pkg/outtypes.py': 'from .base import Base\n\nclass Out(Base):\n    text: str\n',
      'pkg/base.py': 'from pydantic import BaseModel\n\nclass Base(BaseModel):\n    score: float\n',
      'pkg/sub/extra.py': 'from ..outtypes import Out\n\nclass Extra(Out):\n    more: int\n',
      // decoys at the project root, where a relative import does not look
      'base.py': 'from pydantic import BaseModel\n\nclass Base(BaseModel):\n    wrong: int\n',
      'outtypes.py': 'from pydantic import BaseModel\n\nclass Out(BaseModel):\n    wrong: int\n',
    });
    const output = async (predict: string): Promise<unknown> =>
      schemas(await generateOpenApiSchema({ projectDir: project, predict, cogVersion: version })).Output
        ?.properties;
    assert.deepEqual(Object.keys((await output('pkg/mod.py:Predictor')) as object), ['score', 'text']);
    assert.deepEqual(Object.keys((await output('pkg/mod.py:Other')) as object), ['score', 'text', 'more']);
  });

  test('project: BaseModel output imported from another project file under an alias', async () => {
    const s = await generateOpenApiSchema({
      projectDir: `${dir}project`,
      predict: 'predict.py:Other',
      cogVersion: version,
    });
    await golden('project-other', s);
  });
});

describe('static OpenAPI schema: shape', () => {
  test('document header, components and paths follow upstream', async () => {
    const s = await fromFixture('hello.py', 'Runner');
    assert.equal(s.openapi, '3.0.2');
    assert.deepEqual(s.info, { title: 'Cog', version });
    assert.deepEqual(Object.keys(s), ['components', 'info', 'openapi', 'paths']);
    assert.deepEqual(Object.keys(schemas(s)), [
      'Input',
      'Output',
      'PredictionRequest',
      'PredictionResponse',
      'Status',
      'HTTPValidationError',
      'ValidationError',
    ]);
    assert.deepEqual(Object.keys(s.paths as JsonObject), [
      '/',
      '/health-check',
      '/predictions',
      '/predictions/{prediction_id}/cancel',
    ]);
  });

  test('property keys are written in Go encoding/json order, properties in signature order', async () => {
    const s = await fromFixture('scalars.py', 'Predictor');
    const input = schemas(s).Input as { properties: Record<string, JsonObject> };
    assert.deepEqual(Object.keys(input.properties).slice(0, 3), ['prompt', 'negative_prompt', 'num_steps']);
    assert.deepEqual(Object.keys(input.properties.num_steps ?? {}), [
      'default',
      'description',
      'maximum',
      'minimum',
      'title',
      'type',
      'x-order',
    ]);
    assert.deepEqual(Object.keys(input), ['properties', 'required', 'title', 'type']);
  });

  test('titles are derived from parameter names like upstream TitleCase', () => {
    const input = inputOf(`
from cog import BasePredictor
class Predictor(BasePredictor):
    def predict(self, num_inference_steps: int, x: str, _private: str, lora_URL: str) -> str: ...
`) as { properties: Record<string, { title: string }> };
    assert.equal(input.properties.num_inference_steps?.title, 'Num Inference Steps');
    assert.equal(input.properties.x?.title, 'X');
    assert.equal(input.properties._private?.title, ' Private');
    assert.equal(input.properties.lora_URL?.title, 'Lora URL');
  });

  test('choices become enum components named after the parameter, referenced through allOf', async () => {
    const s = await fromFixture('scalars.py', 'Predictor');
    assert.deepEqual(schemas(s).scheduler, {
      description: 'An enumeration.',
      enum: ['DDIM', 'K_EULER', 'PNDM'],
      title: 'scheduler',
      type: 'string',
    });
    const props = (schemas(s).Input as { properties: Record<string, JsonObject> }).properties;
    assert.deepEqual(props.scheduler?.allOf, [{ $ref: '#/components/schemas/scheduler' }]);
    assert.equal(props.scheduler?.title, undefined);
  });

  test('None defaults: required on plain types, nullable default on Optional and Secret', () => {
    const input = inputOf(`
from typing import Optional
from cog import BasePredictor, Input, Secret
class Predictor(BasePredictor):
    def predict(self, seed: int = Input(default=None), a: Optional[int] = None, key: Secret = Input(default=None), b: Optional[str] = Input()) -> str: ...
`) as { properties: Record<string, JsonObject>; required: string[] };
    assert.deepEqual(input.required, ['seed']);
    assert.equal('default' in (input.properties.seed ?? {}), false);
    assert.deepEqual([input.properties.a?.default, input.properties.a?.nullable], [null, true]);
    assert.deepEqual([input.properties.key?.default, input.properties.key?.nullable], [null, true]);
    assert.equal('default' in (input.properties.b ?? {}), false);
  });

  test('Input() positional default, class-attribute Input references, Annotated and string annotations', () => {
    const input = inputOf(`
from __future__ import annotations
from typing import Annotated
import cog

class Inputs:
    prompt = cog.Input(description="shared prompt", default="hi")

class Predictor(cog.BasePredictor):
    def predict(
        self,
        text: "str" = cog.Input("positional default"),
        prompt: str = Inputs.prompt,
        count: Annotated[int, "meta"] = 2,
        paths: "list[cog.Path]" = [],
    ) -> "cog.Path": ...
`) as { properties: Record<string, JsonObject> };
    assert.equal(input.properties.text?.default, 'positional default');
    assert.deepEqual(
      [input.properties.prompt?.default, input.properties.prompt?.description],
      ['hi', 'shared prompt'],
    );
    assert.deepEqual([input.properties.count?.type, input.properties.count?.default], ['integer', 2]);
    assert.deepEqual(input.properties.paths?.items, { format: 'uri', type: 'string' });
  });

  test('union inputs become anyOf (nullable when None is a member)', () => {
    const input = inputOf(`
from typing import Union
from cog import BasePredictor
class Predictor(BasePredictor):
    def predict(self, a: Union[int, str], b: int | list[int] | None = None) -> str: ...
`) as { properties: Record<string, JsonObject>; required: string[] };
    assert.deepEqual(input.properties.a?.anyOf, [{ type: 'integer' }, { type: 'string' }]);
    assert.deepEqual(input.properties.b?.anyOf, [
      { nullable: true, type: 'integer' },
      { items: { type: 'integer' }, nullable: true, type: 'array' },
    ]);
    assert.equal(input.properties.b?.nullable, true);
    assert.deepEqual(input.required, ['a']);
  });

  test('pydantic BaseModel outputs and typing.Dict / Any', () => {
    const s = schemas(
      inline(`
import pydantic
from typing import Any, Dict
from cog import BasePredictor
class Out(pydantic.BaseModel):
    data: Dict[str, Any]
    note: str = "x"
class Predictor(BasePredictor):
    def predict(self, payload: dict) -> Out: ...
`),
    );
    assert.deepEqual(s.Output, {
      properties: {
        data: { additionalProperties: { type: 'object' }, title: 'Data', type: 'object' },
        note: { title: 'Note', type: 'string' },
      },
      required: ['data'],
      title: 'Output',
      type: 'object',
    });
    assert.equal((s.Input as { properties: Record<string, JsonObject> }).properties.payload?.type, 'object');
  });

  test('@streaming sets x-cog-streaming on the predictions operation', async () => {
    const streaming = await fromFixture('iterators.py', 'Tokens');
    const plain = await fromFixture('iterators.py', 'Frames');
    const op = (s: JsonObject): JsonObject =>
      ((s.paths as Record<string, { post: JsonObject }>)['/predictions'] as { post: JsonObject }).post;
    assert.equal(op(streaming)['x-cog-streaming'], true);
    assert.equal(op(plain)['x-cog-streaming'], undefined);
  });

  test('predict() is used when run() is absent; a class may hold the predictor in a decorated/async method', () => {
    const s = schemas(
      inline(`
from cog import BasePredictor
def deco(f): return f
class Predictor(BasePredictor):
    @deco
    async def predict(self, n: int) -> int:  # trailing comment
        return n
`),
    );
    assert.equal((s.Output as JsonObject).type, 'integer');
  });
});

describe('static OpenAPI schema: errors name file and line', () => {
  test('class not found lists what the file defines', () => {
    const e = rejects(
      'class Runner:\n    def run(self) -> str: ...\n',
      /^predict\.py: predictor not found: no class or function named 'Predictor'/,
    );
    assert.match(e.hint ?? '', /Runner/);
  });

  test('missing run/predict method', () => {
    rejects(
      'from cog import BaseRunner\n\nclass Predictor(BaseRunner):\n    def setup(self): ...\n',
      /^predict\.py:3: Predictor must define run\(\) or predict\(\)/,
    );
  });

  test('both run and predict', () => {
    rejects(
      'class Predictor:\n    def run(self) -> str: ...\n    def predict(self) -> str: ...\n',
      /must define either run\(\) or predict\(\), not both/,
    );
  });

  test('parameter without annotation', () => {
    rejects(
      'class Predictor:\n    def run(self,\n            prompt) -> str: ...\n',
      /^predict\.py:3: parameter 'prompt' on Predictor\.run has no type annotation/,
    );
  });

  test('missing return annotation', () => {
    rejects(
      'class Predictor:\n    def run(self, x: int):\n        pass\n',
      /^predict\.py:2: Predictor\.run\(\) must have a return type annotation/,
    );
  });

  test('a return annotated None is named as such, not as a missing annotation', () => {
    rejects(
      'class Predictor:\n    def run(self, x: int) -> None:\n        pass\n',
      /^predict\.py:2: Predictor\.run\(\) is annotated to return None: a model returns an output/,
    );
  });

  test('unsupported input types', () => {
    rejects(
      'import numpy as np\nclass Predictor:\n    def run(self, a: np.ndarray) -> str: ...\n',
      /^predict\.py:3: unsupported type: np\.ndarray \(imported from 'numpy'\)/,
    );
    rejects(
      'from typing import Literal\nclass Predictor:\n    def run(self, a: Literal["x", "y"]) -> str: ...\n',
      /Literal\[\.\.\.\] is not supported/,
    );
    rejects(
      'from typing import Tuple\nclass Predictor:\n    def run(self, a: Tuple[int, int]) -> str: ...\n',
      /Tuple\[\.\.\.\] is not a supported input type/,
    );
    rejects('class Predictor:\n    def run(self, a: list[list[int]]) -> str: ...\n', /nested generics/);
  });

  test('unsupported outputs', () => {
    rejects(
      'from typing import Optional\nclass Predictor:\n    def run(self) -> Optional[str]: ...\n',
      /^predict\.py:3: unsupported output type: Optional/,
    );
    rejects(
      'from cog import ConcatenateIterator\nclass Predictor:\n    def run(self) -> ConcatenateIterator[int]: ...\n',
      /ConcatenateIterator element type must be str, got int/,
    );
    rejects(
      'from PIL import Image\nclass Predictor:\n    def run(self) -> Image: ...\n',
      /cannot resolve output type 'Image' \(imported from 'PIL'\)/,
    );
    rejects('class Predictor:\n    def run(self) -> Widget: ...\n', /cannot resolve output type 'Widget'/);
  });

  test('Input() problems', () => {
    rejects(
      'from cog import Input\nclass Predictor:\n    def run(self, a: list[str] = Input(default_factory=list)) -> str: ...\n',
      /^predict\.py:3: parameter 'a': default_factory is not supported/,
    );
    rejects(
      'from cog import Input\nclass Predictor:\n    def run(self, a: str = Input(choices=get_choices())) -> str: ...\n',
      /choices expression cannot be statically resolved/,
    );
    rejects(
      'class Predictor:\n    def run(self, a: str = os.environ["X"]) -> str: ...\n',
      /default `os\.environ\["X"\]` cannot be statically resolved/,
    );
    rejects(
      'from cog import Input\nclass Predictor:\n    def run(self, a: str = Input(ge=1)) -> str: ...\n',
      /incompatible input type for ge\/le: a: str/,
    );
    rejects(
      'from cog import Input\nclass Predictor:\n    def run(self, a: str = Input(choices=["only"])) -> str: ...\n',
      /choices must have >= 2 elements/,
    );
    rejects('class Predictor:\n    def run(self, *args: str) -> str: ...\n', /must not have \*args/);
  });

  test('signatures cog does not take are named as such, not as syntax errors, with what cog accepts', () => {
    const cases: [string, RegExp][] = [
      [
        'def run(self, *args: str) -> str: ...',
        /^predict\.py:2: Predictor\.run\(\) must not have \*args \(parameter 'args'\)/,
      ],
      [
        'def run(self, **kw: str) -> str: ...',
        /^predict\.py:2: Predictor\.run\(\) must not have \*\*kwargs \(parameter 'kw'\)/,
      ],
      [
        'def run(self, *, x: str) -> str: ...',
        /^predict\.py:2: Predictor\.run\(\) must not have keyword-only args \(parameter 'x'\)/,
      ],
    ];
    for (const [def, pattern] of cases) {
      const e = rejects(`class Predictor:\n    ${def}\n`, pattern);
      assert.equal(e.kind, 'invalid-signature');
      assert.doesNotMatch(e.hint ?? '', /syntax/);
      assert.match(e.hint ?? '', /no \*args, \*\*kwargs or keyword-only parameters/);
    }
    const e = rejects(
      'class Predictor:\n    def run(x: str) -> str: ...\n',
      /^predict\.py:2: Predictor\.run\(\) must have 'self' as first argument/,
    );
    assert.equal(e.kind, 'invalid-signature');
    assert.equal(e.hint, 'define it as `def run(self, ...)`: cog calls it on an instance of the class');
  });

  test('syntax errors carry the line', () => {
    rejects(
      'class Predictor:\n    def run(self) -> str:\n        x = "unterminated\n',
      /^predict\.py:3: invalid Python syntax: unterminated string literal/,
    );
    rejects(
      'class Predictor:\n    def run(self) -> str:\n        return 1\n      y = 2\n',
      /^predict\.py:4: invalid Python syntax: unindent/,
    );
  });

  test('a parameter name given twice is a syntax error, as in CPython', () => {
    rejects(
      'class Predictor:\n    def run(self, m: str,\n            m: int) -> str: ...\n',
      /^predict\.py:3: invalid Python syntax: duplicate argument 'm' in function definition$/,
    );
  });

  test('references and project files', async () => {
    assert.deepEqual(parseRef('predict.py:Predictor'), { file: 'predict.py', name: 'Predictor' });
    assert.throws(() => parseRef('predict.py'), /invalid predict reference 'predict\.py'/);
    assert.throws(() => parseRef('predict.py:A:B'), /invalid predict reference 'predict\.py:A:B'/);
    await assert.rejects(
      generateOpenApiSchema({
        projectDir: `${dir}project`,
        predict: 'missing.py:Runner',
        cogVersion: version,
      }),
      (err: unknown) =>
        err instanceof CogError &&
        err.message ===
          `missing.py: no such file in the project directory ${dir}project (cog.yaml's reference "missing.py:Runner")` &&
        /relative -f/.test(err.hint ?? ''),
    );
    // a link to nothing: named with its target (it said "no such file" of a file that is there)
    const linked = await tempDir('cogts-dangling-');
    await symlink('gone.py', join(linked, 'dangling.py'));
    await assert.rejects(
      generateOpenApiSchema({ projectDir: linked, predict: 'dangling.py:Runner', cogVersion: version }),
      (err: unknown) =>
        err instanceof CogError &&
        err.message ===
          `dangling.py: it is a link to gone.py, which does not exist (cog.yaml's reference "dangling.py:Runner")` &&
        err.hint === "point dangling.py at the predictor's source, or fix the reference in cog.yaml",
    );
    await assert.rejects(
      generateOpenApiSchema({
        projectDir: `${dir}project`,
        predict: '../hello.py:Runner',
        cogVersion: version,
      }),
      /must be inside the project directory/,
    );
  });
});

describe('predictor metadata: async-ness and @cog.concurrent(max), as upstream reads them', () => {
  const meta = (source: string, name = 'Predictor', mode: 'predict' | 'train' = 'predict') =>
    predictorMetadataFromSource(source, 'predict.py', name, mode);
  const cls = (imports: string, decorator: string, asyncDef = true, method = 'predict') =>
    `${imports}\nclass Predictor:\n    ${decorator}\n    ${asyncDef ? 'async ' : ''}def ${method}(self, s: str) -> str:\n        return s\n`;
  const metaRejects = (source: string, pattern: RegExp, name = 'Predictor'): SchemaError =>
    schemaErrorOf(() => meta(source, name), pattern);

  test('@cog.concurrent(max=N) and @concurrent(max=N) from cog, on an async run() or predict()', () => {
    const m = meta(cls('import cog', '@cog.concurrent(max=4)'));
    assert.deepEqual(m, {
      mode: 'predict',
      file: 'predict.py',
      method: 'Predictor.predict',
      line: 4,
      isAsync: true,
      concurrencyMax: 4,
    });
    assert.equal(
      meta(cls('from cog import concurrent', '@concurrent(max=8)', true, 'run')).concurrencyMax,
      8,
    );
    assert.equal(meta(cls('from cog import concurrent as conc', '@conc(max=2)')).concurrencyMax, 2);
    assert.equal(meta(cls('import cog as c', '@c.concurrent(max=3)')).concurrencyMax, 3);
    // without max (bare or empty call) it is 1, as upstream reads it
    assert.equal(meta(cls('import cog', '@cog.concurrent')).concurrencyMax, 1);
    assert.equal(meta(cls('import cog', '@cog.concurrent()', false)).concurrencyMax, 1);
    // max=1 on a sync method is fine
    assert.equal(meta(cls('import cog', '@cog.concurrent(max=1)', false)).concurrencyMax, 1);
  });

  test("no decorator, or a `concurrent` that is not cog's: no concurrency; async-ness is read either way", () => {
    const plain = meta('class Predictor:\n    def predict(self) -> str: ...\n');
    assert.equal(plain.concurrencyMax, undefined);
    assert.equal(plain.isAsync, false);
    assert.equal(
      meta(cls('from other import concurrent', '@concurrent(max=4)', false)).concurrencyMax,
      undefined,
    );
    assert.equal(meta(cls('import other as cog', '@cog.concurrent(max=4)', false)).concurrencyMax, undefined);
    const fn = meta(
      'import cog\n@cog.concurrent(max=5)\nasync def run(s: str) -> str:\n    return s\n',
      'run',
    );
    assert.deepEqual([fn.method, fn.isAsync, fn.concurrencyMax], ['run', true, 5]);
  });

  test('the decorator is read on the method the mode uses, also when inherited from a base class', () => {
    const source = `import cog
class Base:
    @cog.concurrent(max=6)
    async def run(self) -> str: ...
class Predictor(Base):
    @cog.concurrent(max=2)
    async def train(self) -> str: ...
`;
    assert.equal(meta(source).concurrencyMax, 6);
    assert.equal(meta(source).method, 'Predictor.run');
    assert.equal(meta(source, 'Predictor', 'train').concurrencyMax, 2);
  });

  test('max > 1 on a method that is not async is refused, naming the file, line and method', () => {
    const e = metaRejects(
      cls('import cog', '@cog.concurrent(max=4)', false),
      /^predict\.py:4: Predictor\.predict\(\) is not async: @concurrent\(max=4\) requires an async run\(\) or predict\(\) method$/,
    );
    assert.match(e.hint ?? '', /async def predict/);
    // schema generation refuses it too
    rejects(cls('from cog import concurrent', '@concurrent(max=2)', false, 'run'), /is not async/);
  });

  test('positional, non-literal or out-of-range max is refused: cog reads it without running Python', () => {
    metaRejects(
      cls('import cog', '@cog.concurrent(4)'),
      /^predict\.py:3: @concurrent only supports a literal integer max=/,
    );
    metaRejects(cls('import cog', '@cog.concurrent(limit=4)'), /only supports a literal integer max=/);
    metaRejects(
      cls('import cog\nN = 4', '@cog.concurrent(max=N)'),
      /max must be an integer literal, not `N`/,
    );
    metaRejects(cls('import cog', '@cog.concurrent(max=2.5)'), /max must be an integer literal/);
    metaRejects(cls('import cog', '@cog.concurrent(max=True)'), /max must be an integer literal/);
    metaRejects(cls('import cog', '@cog.concurrent(max=0)'), /max must be at least 1, not 0/);
    metaRejects(cls('import cog', '@cog.concurrent(max=-2)'), /max must be at least 1, not -2/);
  });

  test('readPredictorMetadata reads the file a cog.yaml reference names', async () => {
    const project = join(await tempDir('cogts-metadata-'), 'project');
    await mkdir(join(project, 'src'), { recursive: true });
    await writeFile(join(project, 'src', 'predict.py'), cls('import cog', '@cog.concurrent(max=4)'));
    const m = await readPredictorMetadata(project, 'src/predict.py:Predictor', 'predict');
    assert.deepEqual([m.file, m.method, m.concurrencyMax], ['src/predict.py', 'Predictor.predict', 4]);
  });
});

describe('python tokenizer', () => {
  test('a UTF-8 byte order mark opening the file is skipped, as CPython does; elsewhere it is refused', () => {
    const src = 'class Predictor:\n    def run(self, x: int) -> str:\n        ...\n';
    assert.deepEqual(inline(`\uFEFF${src}`), inline(src));
    assert.equal(tokenize('\uFEFFx = 1\n')[0]?.text, 'x');
    rejects(`${src}\uFEFF\n`, /^predict\.py:4: invalid Python syntax: invalid character/);
  });

  test('string prefixes, quotes, escapes and implicit line joining', () => {
    const src = `x = (r"a\\d" b'b' f"{y}" '''t
q''' "\\t\\u00e9\\x41\\101" u'u')\ny = 1`;
    const tokens = tokenize(src).filter((t) => t.kind === 'string');
    assert.deepEqual(
      tokens.map((t) => t.value),
      ['a\\d', 'b', '{y}', 't\nq', '\té' + 'AA', 'u'],
    );
    assert.equal(tokens[2]?.fstring, true);
    const newlines = tokenize(src)
      .filter((t) => t.kind === 'newline')
      .map((t) => t.line);
    assert.deepEqual(newlines, [2, 3]);
  });

  test('numbers, comments and continuation lines', () => {
    const tokens = tokenize('a = 0x1F + 1_000 + 1.5e-3 + .5  # comment\nb = 1 + \\\n    2\n');
    assert.deepEqual(
      tokens.filter((t) => t.kind === 'number').map((t) => t.text),
      ['0x1F', '1_000', '1.5e-3', '.5', '1', '2'],
    );
    assert.equal(tokens.filter((t) => t.kind === 'indent').length, 0);
  });
});
