// cog doctor's checks over a context of fake files and probes, and the report they print.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Check,
  type DoctorContext,
  compareVersions,
  doctorChecks,
  kernelFloor,
  splitReference,
} from '../../src/doctor/checks.js';
import { topLevelPredict } from '../../src/doctor/config-text.js';
import {
  type FileEdits,
  FixRefused,
  fixPredictToRun,
  fixPydanticBaseModel,
  fixRemovedImport,
} from '../../src/doctor/fixes.js';
import { formatReport, runChecks, tally } from '../../src/doctor/report.js';

function context(overrides: Partial<DoctorContext> & { files?: Record<string, string> } = {}): DoctorContext {
  const files = overrides.files ?? {};
  return {
    configFile: 'cog.yaml',
    configText: 'build:\n  python_version: "3.11"\nrun: "run.py:Runner"\n',
    parseErrors: [],
    loadError: undefined,
    config: {
      predict: 'run.py:Runner',
      train: null,
      pythonVersion: '3.11',
      gpu: false,
      cuda: null,
      torch: null,
      warnings: [],
    },
    readFile: (path) => files[path],
    pythonFiles: () => Object.keys(files).filter((path) => path.endsWith('.py')),
    env: {},
    probeBuildkit: async () => ({
      ok: true,
      address: 'unix:///b.sock',
      version: 'v0.32.2',
      platforms: ['linux/amd64'],
    }),
    localPythonVersion: async () => '3.11.7',
    gpuComputeCapabilities: async () => [],
    pushCredentials: async () => undefined,
    ...overrides,
  };
}

const goodRunner = `from cog import BaseRunner


class Runner(BaseRunner):
    def run(self, name: str) -> str:
        return name
`;

const byId = (id: string): Check => {
  const check = doctorChecks.find((c) => c.id === id);
  assert.ok(check, id);
  return check;
};

test('the checks run in upstream order, and a sound project passes them all', async () => {
  assert.deepEqual(
    doctorChecks.map((c) => c.id),
    [
      'config-parse',
      'config-schema',
      'predict-to-run-migration',
      'config-deprecated-fields',
      'config-predict-ref',
      'python-pydantic-basemodel',
      'python-deprecated-imports',
      'python-missing-type-annotations',
      'env-buildkit',
      'env-registry-credentials',
      'env-python-version',
      'env-gpu-compat',
    ],
  );
  const outcomes = await runChecks(doctorChecks, () => context({ files: { 'run.py': goodRunner } }));
  assert.deepEqual(tally(outcomes), { errors: 0, warnings: 0, fixed: 0 });
  const report = formatReport(outcomes, false);
  assert.match(
    report,
    /^ ✔ BuildKit \(buildkitd v0\.32\.2 at unix:\/\/\/b\.sock; platforms linux\/amd64\)$/m,
  );
  assert.match(report, /^ ✔ GPU compatibility \(skipped: not a GPU model\)$/m);
  assert.match(report, / ✔ no issues found\n$/);
  assert.ok(!report.includes('\u001b['), 'no colour codes without colour');
  assert.ok(formatReport(outcomes, true).includes('\u001b[1;32m ✔\u001b[0m Config parsing'));
});

test('config: a missing file, bad YAML and a config that does not validate are errors', async () => {
  const missing = await byId('config-parse').run(context({ configText: undefined }));
  assert.equal(missing.findings[0]?.message, 'cog.yaml not found');
  assert.match(missing.findings[0]?.remediation ?? '', /cog init/);
  // -f naming a directory: what finding the file said, not "not found" and cog init
  const directory = await byId('config-parse').run(
    context({
      configText: undefined,
      configMissing: {
        message: '/tmp is a directory, not a config file',
        hint: 'pass -f the path of a config file',
      },
    }),
  );
  assert.equal(directory.findings[0]?.message, '/tmp is a directory, not a config file');
  assert.equal(directory.findings[0]?.remediation, 'pass -f the path of a config file');
  const bad = await byId('config-parse').run(context({ parseErrors: ['cog.yaml:2:3: bad indentation'] }));
  assert.equal(bad.findings[0]?.message, 'cog.yaml has invalid YAML: cog.yaml:2:3: bad indentation');
  const invalid = await byId('config-schema').run(
    context({ loadError: 'cog.yaml:2:19: invalid build.python_version "3.9"', config: undefined }),
  );
  assert.equal(invalid.findings[0]?.severity, 'error');
  assert.match(invalid.findings[0]?.message ?? '', /^cog\.yaml validation failed: .*python_version/);
  // a config that did not parse is not also reported as invalid
  const skipped = await byId('config-schema').run(context({ parseErrors: ['x'] }));
  assert.deepEqual(skipped.findings, []);
});

test('predict: in cog.yaml is a warning, and the starter predict.py:Predictor a second one', async () => {
  assert.deepEqual(topLevelPredict('build:\n  gpu: false\npredict: "predict.py:Predictor"  # old\n'), {
    line: 3,
    value: 'predict.py:Predictor',
  });
  assert.equal(topLevelPredict('build:\n  predict: x\nrun: a.py:B\n'), undefined);
  const text = 'predict: predict.py:Predictor\n';
  const result = await byId('predict-to-run-migration').run(
    context({
      configText: text,
      files: { 'predict.py': 'from cog import BasePredictor\nclass Predictor(BasePredictor):\n    pass\n' },
    }),
  );
  assert.deepEqual(
    result.findings.map((f) => [f.severity, f.message, f.line]),
    [
      ['warning', 'predict in cog.yaml is deprecated; use run with run.py:Runner', 1],
      ['warning', 'predict.py uses deprecated Predictor/BasePredictor/predict() names', undefined],
    ],
  );
  assert.equal(result.findings[0]?.remediation, 'Run cog doctor --fix to migrate predict: to run:');
  // a reference the fix does not migrate: the rename is the user's
  const other = await byId('predict-to-run-migration').run(
    context({ configText: 'predict: model.py:Model\n' }),
  );
  assert.equal(other.findings[0]?.remediation, 'rename predict: to run: in cog.yaml (same value)');
  // the deprecated-fields check leaves predict to the check above
  const fields = await byId('config-deprecated-fields').run(
    context({
      config: {
        ...context().config!,
        warnings: [
          { field: 'predict', text: 'deprecated field "predict"' },
          { field: 'build.python_packages', text: 'cog.yaml:4:5: deprecated field "build.python_packages"' },
        ],
      },
    }),
  );
  assert.deepEqual(
    fields.findings.map((f) => f.message),
    ['cog.yaml:4:5: deprecated field "build.python_packages"'],
  );
});

test('the predictor reference: its form, its file and its class', async () => {
  assert.deepEqual(splitReference('run.py:Runner'), { file: 'run.py', name: 'Runner' });
  assert.equal(splitReference('run.py'), undefined);
  const check = byId('config-predict-ref');
  const run = (predict: string, files: Record<string, string>) =>
    check.run(context({ config: { ...context().config!, predict }, files }));
  assert.match(
    (await run('run.py', {})).findings[0]?.message ?? '',
    /must be in the form 'file\.py:ClassName'/,
  );
  assert.equal((await run('run.py:Runner', {})).findings[0]?.message, 'run.py not found');
  const other = await run('run.py:Runner', { 'run.py': 'class Model:\n    pass\nclass Helper:\n    pass\n' });
  assert.equal(other.findings[0]?.message, 'class "Runner" not found in run.py; found: Model, Helper');
  assert.match(
    (await run('run.py:Runner', { 'run.py': 'class Runner(:\n' })).findings[0]?.message ?? '',
    /^cannot parse run\.py: /,
  );
  assert.deepEqual((await run('run.py:Runner', { 'run.py': goodRunner })).findings, []);
  // a function predictor is a valid reference
  assert.deepEqual(
    (await run('run.py:run', { 'run.py': 'def run(x: str) -> str:\n    return x\n' })).findings,
    [],
  );
});

test('python: the pydantic workaround, a removed import and a missing return annotation', async () => {
  const source = `import pydantic as pd
from cog import BaseRunner
from cog.types import ExperimentalFeatureWarning


class Out(pd.BaseModel):
    model_config = pd.ConfigDict(arbitrary_types_allowed=True)
    text: str


class Fine(pd.BaseModel):
    text: str


class Runner(BaseRunner):
    def run(self, name: str):
        return Out(text=name)
`;
  const ctx = context({ files: { 'run.py': source } });
  const pydantic = await byId('python-pydantic-basemodel').run(ctx);
  assert.deepEqual(
    pydantic.findings.map((f) => [f.file, f.line, f.message]),
    [
      [
        'run.py',
        6,
        'Out inherits from pydantic.BaseModel with arbitrary_types_allowed; use cog.BaseModel instead',
      ],
    ],
  );
  const imports = await byId('python-deprecated-imports').run(ctx);
  assert.deepEqual(
    imports.findings.map((f) => [f.line, f.severity]),
    [[3, 'error']],
  );
  const annotations = await byId('python-missing-type-annotations').run(ctx);
  assert.deepEqual(
    annotations.findings.map((f) => [f.line, f.message]),
    [[16, 'Runner.run() is missing a return type annotation']],
  );
  // train: its train method; predict() when a class has no run()
  const trainCtx = context({
    config: { ...context().config!, predict: 'p.py:P', train: 't.py:T' },
    files: {
      'p.py': 'class P:\n    def predict(self) -> str:\n        return ""\n',
      't.py': 'class T:\n    def train(self):\n        pass\n',
    },
  });
  assert.deepEqual(
    (await byId('python-missing-type-annotations').run(trainCtx)).findings.map((f) => f.message),
    ['T.train() is missing a return type annotation'],
  );
});

test('environment: BuildKit unreachable is an error, skip variables, local Python, GPU kernels', async () => {
  const down = await byId('env-buildkit').run(
    context({ probeBuildkit: async () => ({ ok: false, error: 'nothing answers at unix:///x.sock' }) }),
  );
  assert.equal(down.findings[0]?.severity, 'error');
  assert.equal(down.findings[0]?.message, 'BuildKit is not available: nothing answers at unix:///x.sock');
  for (const variable of ['COG_SKIP_BUILDKIT_CHECK', 'COG_SKIP_DOCKER_CHECK']) {
    const skipped = await byId('env-buildkit').run(
      context({ env: { [variable]: '1' }, probeBuildkit: async () => assert.fail('not probed') }),
    );
    assert.equal(skipped.skipped, `${variable} is set`);
  }
  const python = byId('env-python-version');
  assert.equal(
    (await python.run(context({ localPythonVersion: async () => undefined }))).findings[0]?.message,
    'Python not found in PATH',
  );
  assert.equal(
    (await python.run(context({ localPythonVersion: async () => '3.12.1' }))).findings[0]?.message,
    'local Python is 3.12 but cog.yaml specifies 3.11',
  );

  assert.ok(compareVersions('2.7.0', '2.10.0') < 0);
  assert.equal(compareVersions('2.7.0+cu128', '2.7'), 0);
  assert.deepEqual(kernelFloor('12.0'), { torch: '2.7.0', cuda: '12.8' });
  assert.deepEqual(kernelFloor('9.0'), { torch: '2.0.1', cuda: '11.8' });
  assert.equal(kernelFloor('8.6'), undefined);
  const gpu = (torch: string | null, cuda: string, caps: string[]) =>
    byId('env-gpu-compat').run(
      context({
        config: { ...context().config!, gpu: true, torch, cuda },
        gpuComputeCapabilities: async () => caps,
      }),
    );
  const old = await gpu('2.5.1', '12.4', ['12.0', '8.6', '12.0']);
  assert.equal(old.findings.length, 1);
  assert.match(old.findings[0]?.message ?? '', /^torch==2\.5\.1 \(CUDA 12\.4\) ships no kernels for sm_120/);
  assert.match(
    old.findings[0]?.remediation ?? '',
    /sm_120 requires torch>=2\.7\.0 built against CUDA>=12\.8/,
  );
  assert.deepEqual((await gpu('2.7.1', '12.8', ['12.0'])).findings, []);
  assert.equal((await gpu('2.5.1', '12.4', [])).skipped, 'no NVIDIA GPU on this machine (nvidia-smi)');
  assert.equal((await gpu(null, '12.4', ['12.0'])).skipped, 'torch is not pinned to one version');
});

test('a check that throws is reported as an error and the others still run', async () => {
  const boom: Check = {
    id: 'boom',
    group: 'Config',
    description: 'Boom',
    run: () => {
      throw new Error('it broke');
    },
  };
  const outcomes = await runChecks([boom, byId('config-parse')], () => context());
  assert.deepEqual(tally(outcomes), { errors: 1, warnings: 0, fixed: 0 });
  const report = formatReport(outcomes, false);
  assert.match(report, /^ ✗ Boom: it broke$/m);
  assert.match(report, /^ ✔ Config parsing$/m);
  assert.match(report, /^Found 1 error, 0 warnings\.$/m);
});

const starterPredict = `from cog import BasePredictor, Input


class Predictor(BasePredictor):
    def setup(self) -> None:
        self.prefix = "hello "

    def predict(self, name: str = Input(default="x")) -> str:
        return self.prefix + name
`;

test('--fix migrates the starter predict.py:Predictor to run.py:Runner, or refuses saying why', () => {
  const config = '# model\nbuild:\n  python_version: "3.11"\npredict: "predict.py:Predictor"  # mine\n';
  const edits = fixPredictToRun(context({ configText: config, files: { 'predict.py': starterPredict } }));
  assert.deepEqual(edits.remove, ['predict.py']);
  const [run, yaml] = edits.write;
  assert.equal(run?.path, 'run.py');
  assert.equal(run?.modeFrom, 'predict.py');
  assert.match(run?.content ?? '', /^from cog import BaseRunner, Input$/m);
  assert.match(run?.content ?? '', /^class Runner\(BaseRunner\):$/m);
  assert.match(run?.content ?? '', /^ {4}def run\(self, name: str = Input\(default="x"\)\) -> str:$/m);
  assert.match(run?.content ?? '', /^ {4}def setup\(self\) -> None:$/m);
  assert.doesNotMatch(run?.content ?? '', /Predictor|def predict/);
  assert.equal(yaml?.path, 'cog.yaml');
  assert.equal(yaml?.content, '# model\nbuild:\n  python_version: "3.11"\nrun: "run.py:Runner"  # mine\n');

  // BasePredictor used elsewhere too: BaseRunner is imported beside it
  const shared = fixPredictToRun(
    context({
      configText: 'predict: predict.py:Predictor\n',
      files: { 'predict.py': `${starterPredict}\n\nclass Other(BasePredictor):\n    pass\n` },
    }),
  );
  assert.match(shared.write[0]?.content ?? '', /^from cog import BasePredictor, BaseRunner, Input$/m);

  const refuse = (configText: string, files: Record<string, string>, message: RegExp) =>
    assert.throws(
      () => fixPredictToRun(context({ configText, files })),
      (err: unknown) => {
        assert.ok(err instanceof FixRefused);
        assert.match(err.message, message);
        return true;
      },
    );
  const predict = 'predict: predict.py:Predictor\n';
  refuse(`${predict}run: x.py:Y\n`, { 'predict.py': starterPredict }, /cannot run when run is already set/);
  refuse('predict: model.py:Model\n', {}, /Manual migration required: .*only supports predict\.py:Predictor/);
  refuse(predict, { 'predict.py': starterPredict, 'run.py': '' }, /because run\.py already exists/);
  refuse(predict, {}, /because predict\.py was not found/);
  refuse(predict, { 'predict.py': 'class Model:\n    pass\n' }, /no legacy Predictor/);
  refuse(
    predict,
    {
      'predict.py': starterPredict
        .replace('from cog import BasePredictor, Input', 'from cog import BasePredictor as BP, Input')
        .replace('(BasePredictor)', '(BP)'),
    },
    /aliased BasePredictor/,
  );
  refuse(
    predict,
    { 'predict.py': starterPredict.replace('from cog import', 'from mylib import') },
    /only supports BasePredictor imported from cog/,
  );
  refuse(
    predict,
    { 'predict.py': `${starterPredict}\n    def run(self) -> str:\n        return ""\n` },
    /single predict method/,
  );
  // what else uses predict.py, its Predictor or the method would break once renamed or removed
  refuse(
    `${predict}train: "predict.py:train"\n`,
    { 'predict.py': starterPredict },
    /cog\.yaml:2 also refers to predict\.py, which the migration removes/,
  );
  for (const importing of ['from predict import Predictor', 'import os, predict', '    import predict'])
    refuse(
      predict,
      { 'predict.py': starterPredict, 'util/helpers.py': `x = 1\n${importing}\n` },
      /util\/helpers\.py:2 imports predict, which the migration removes/,
    );
  refuse(
    predict,
    {
      'predict.py': `${starterPredict}\n    def twice(self, name: str) -> str:\n        return self.predict(name)\n`,
    },
    /predict\.py:12 uses Predictor or its predict method beyond their definitions/,
  );
  refuse(
    predict,
    { 'predict.py': `${starterPredict}\n\nif __name__ == "__main__":\n    print(Predictor())\n` },
    /predict\.py:13 uses Predictor/,
  );
  // these are not uses: another object's predict, a name in a comment or a string, another module
  const fine = fixPredictToRun(
    context({
      configText: `${predict}# predict.py is the model\n`,
      files: {
        'predict.py': starterPredict.replace(
          'return self.prefix + name',
          'return self.model.predict(name)  # not Predictor.predict\n        "Predictor(), self.predict"',
        ),
        'predictor_utils.py': 'import predictor_tools\nfrom predictions import x\n',
      },
    }),
  );
  assert.match(fine.write[0]?.content ?? '', /^class Runner\(BaseRunner\):$/m);
});

test('--fix removes an import cog removed, the top-level lines that use it and the imports they alone used', () => {
  /** `file` holding `source`, as the fix leaves it */
  const withoutWarning = (source: string, file = 'a.py') =>
    fixRemovedImport(
      context({ files: { [file]: source } }),
      [file],
      'cog.types',
      'ExperimentalFeatureWarning',
    ).write[0]?.content;
  const source = [
    'import warnings',
    'from cog import BaseRunner',
    'from cog.types import ExperimentalFeatureWarning, Path',
    '',
    'warnings.filterwarnings("ignore", category=ExperimentalFeatureWarning)',
    '',
    '',
    'class Runner(BaseRunner):',
    '    def run(self) -> Path:',
    '        return Path("x")',
    '',
  ].join('\n');
  assert.equal(
    withoutWarning(source, 'run.py'),
    [
      'from cog import BaseRunner',
      'from cog.types import Path',
      '',
      '',
      'class Runner(BaseRunner):',
      '    def run(self) -> Path:',
      '        return Path("x")',
      '',
    ].join('\n'),
  );
  // a # or a name inside a string is neither a comment nor a use: the line using the name still goes
  assert.equal(
    withoutWarning(
      [
        'import warnings',
        'from cog.types import ExperimentalFeatureWarning',
        'warnings.filterwarnings("ignore", message="#(", category=ExperimentalFeatureWarning)',
        'print("ExperimentalFeatureWarning # gone")',
        '',
      ].join('\n'),
    ),
    'print("ExperimentalFeatureWarning # gone")\n',
  );
  // an import still used elsewhere stays, one of several names goes alone, one unused before stays
  const shared = [
    'import os, warnings as w  # std',
    'import sys',
    'import json',
    'from cog.types import ExperimentalFeatureWarning',
    'w.filterwarnings("ignore", category=ExperimentalFeatureWarning)',
    'sys.stderr.write(os.sep)  # ExperimentalFeatureWarning was here',
    '',
  ].join('\n');
  assert.equal(
    withoutWarning(shared),
    [
      'import os  # std',
      'import sys',
      'import json',
      'sys.stderr.write(os.sep)  # ExperimentalFeatureWarning was here',
      '',
    ].join('\n'),
  );
  // an import sharing its line with another statement stays whole
  assert.equal(
    withoutWarning(
      'import warnings; x = 1\nfrom cog.types import ExperimentalFeatureWarning\nwarnings.warn(ExperimentalFeatureWarning)\n',
    ),
    'import warnings; x = 1\n',
  );
  // the only name: the whole import goes; a use inside a block is left to the user
  const alone = 'from cog.types import ExperimentalFeatureWarning\nx = 1\n';
  assert.equal(withoutWarning(alone), 'x = 1\n');
  assert.throws(
    () =>
      fixRemovedImport(
        context({
          files: {
            'a.py':
              'from cog.types import ExperimentalFeatureWarning\nif True:\n    print(ExperimentalFeatureWarning)\n',
          },
        }),
        ['a.py'],
        'cog.types',
        'ExperimentalFeatureWarning',
      ),
    /a\.py:3 uses ExperimentalFeatureWarning: remove that use by hand/,
  );
});

test('--fix: a fixed check is reported fixed, later checks see the fixed project, a refusal is an error', async () => {
  const files: Record<string, string> = { 'predict.py': starterPredict };
  let configText = 'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n';
  const make = () =>
    context({
      configText,
      files: { ...files },
      config: {
        ...context().config!,
        predict: /^run:/m.test(configText) ? 'run.py:Runner' : 'predict.py:Predictor',
      },
    });
  const applied: FileEdits[] = [];
  const outcomes = await runChecks(doctorChecks, make, {
    fix: true,
    apply: async (edits) => {
      applied.push(edits);
      for (const { path, content } of edits.write) {
        if (path === 'cog.yaml') configText = content;
        else files[path] = content;
      }
      for (const path of edits.remove) delete files[path];
    },
  });
  assert.equal(applied.length, 1);
  assert.equal(outcomes.find((o) => o.check.id === 'predict-to-run-migration')?.fixed, true);
  // the reference check ran on the migrated project: run.py:Runner exists
  assert.deepEqual(outcomes.find((o) => o.check.id === 'config-predict-ref')?.result?.findings, []);
  assert.deepEqual(tally(outcomes), { errors: 0, warnings: 0, fixed: 2 });
  assert.match(formatReport(outcomes, false, true), /^ ✔ Fixed: Deprecated predict interface names$/m);
  assert.match(formatReport(outcomes, false, true), /^ ✔ Fixed 2 issues\.$/m);

  // a fix that refuses: the check is an error, nothing applied; a finding without a fix says so
  const refused = await runChecks(
    doctorChecks,
    () =>
      context({
        configText: 'predict: other.py:Model\n',
        config: { ...context().config!, predict: 'other.py:Model' },
      }),
    { fix: true, apply: async () => assert.fail('nothing to apply') },
  );
  const migration = refused.find((o) => o.check.id === 'predict-to-run-migration');
  assert.match(migration?.error ?? '', /Manual migration required/);
  assert.match(formatReport(refused, false, true), /^ {4}\(no auto-fix available\)$/m);
});

test('--fix puts cog.BaseModel in place of the pydantic workaround, tidying both imports', () => {
  const fix = (source: string, classes: string[]) =>
    fixPydanticBaseModel(context({ files: { 'run.py': source } }), 'run.py', classes).write[0]?.content;
  assert.equal(
    fix(
      [
        'from cog import BaseRunner',
        'from pydantic import BaseModel, ConfigDict',
        '',
        '',
        'class Out(BaseModel):',
        '    model_config = ConfigDict(arbitrary_types_allowed=True)',
        '    text: str',
        '',
      ].join('\n'),
      ['Out'],
    ),
    ['from cog import BaseRunner, BaseModel', '', '', 'class Out(BaseModel):', '    text: str', ''].join(
      '\n',
    ),
  );
  // another class keeps pydantic's BaseModel: cog's comes in as CogBaseModel; other settings stay
  assert.equal(
    fix(
      [
        'from pydantic import BaseModel, ConfigDict',
        'from cog import BaseRunner  # the runner',
        '',
        'class Out(BaseModel):',
        '    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)',
        '',
        'class Plain(BaseModel):',
        '    x: int',
        '',
      ].join('\n'),
      ['Out'],
    ),
    [
      'from pydantic import BaseModel, ConfigDict',
      'from cog import BaseRunner, BaseModel as CogBaseModel',
      '',
      'class Out(CogBaseModel):',
      '    model_config = ConfigDict(frozen=True)',
      '',
      'class Plain(BaseModel):',
      '    x: int',
      '',
    ].join('\n'),
  );
  // through the module, with no cog import yet: one is added where the imports start
  assert.equal(
    fix(
      [
        '"""A model."""',
        'import pydantic',
        '',
        'class Out(pydantic.BaseModel):',
        '    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)',
        '',
      ].join('\n'),
      ['Out'],
    ),
    ['"""A model."""', 'from cog import BaseModel', '', 'class Out(BaseModel):', ''].join('\n'),
  );
  assert.throws(
    () =>
      fix(
        'from pydantic import BaseModel, ConfigDict\nclass Out(\n    BaseModel,\n):\n    model_config = ConfigDict(arbitrary_types_allowed=True)\n',
        ['Out'],
      ),
    /run\.py:2: name the base on the class line/,
  );
});

test('registry credentials: found (never shown), missing for r8.im a warning, elsewhere a note', async () => {
  const check = byId('env-registry-credentials');
  const run = (answer: Awaited<ReturnType<DoctorContext['pushCredentials']>>) =>
    check.run(context({ pushCredentials: async () => answer }));
  assert.equal((await run(undefined)).skipped, 'no image or model in the config to push to');
  assert.equal(
    (await run({ registry: 'r8.im', found: true, from: 'the docker config' })).detail,
    'credentials for r8.im from the docker config',
  );
  const missing = await run({ registry: 'r8.im', found: false });
  assert.equal(missing.findings[0]?.severity, 'warning');
  assert.equal(missing.findings[0]?.message, 'no credentials for r8.im: cog push will be refused');
  assert.match(missing.findings[0]?.remediation ?? '', /^cog login r8\.im/);
  const local = await run({ registry: 'localhost:5000', found: false });
  assert.equal(local.findings[0]?.severity, 'info', 'a local registry may take anonymous pushes');
  const broken = await run({ registry: 'r8.im', error: 'docker-credential-desktop: not found' });
  assert.match(
    broken.findings[0]?.message ?? '',
    /cannot read the credentials for r8\.im: docker-credential-desktop/,
  );
  assert.match(broken.findings[0]?.remediation ?? '', /^fix the credential helper the message names/);
  const badFile = await run({ registry: 'r8.im', error: '/cfg/config.json is not valid JSON' });
  assert.match(badFile.findings[0]?.remediation ?? '', /^fix the file the message names/);
  // a malformed image name is the config's error, not the docker config's (cog build refuses it too)
  const badName = await run({
    field: 'image',
    problem: 'invalid image reference "Bad Image": it has a space in it',
  });
  assert.equal(badName.findings[0]?.severity, 'error');
  assert.match(
    badName.findings[0]?.message ?? '',
    /^'image' in \S*cog\.yaml: invalid image reference "Bad Image"/,
  );
  assert.match(badName.findings[0]?.remediation ?? '', /^write it as \[registry\/\]repository/);
  // an info finding does not count
  const outcomes = await runChecks([check], () =>
    context({ pushCredentials: async () => ({ registry: 'localhost:5000', found: false }) }),
  );
  assert.deepEqual(tally(outcomes), { errors: 0, warnings: 0, fixed: 0 });
  assert.match(
    formatReport(outcomes, false),
    /^ ✔ Registry credentials\n {2}no credentials stored for localhost:5000/m,
  );
});
