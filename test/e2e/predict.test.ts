// `cog run` (`cog predict`)/`cog train` without Docker: the project is built and run in a BuildKit exec,
// or a pushed image is run; inputs are checked before anything starts; outputs are written like upstream.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec, execOk } from '../support/exec.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';
import { tempDirsRemovedAfterTests, writeFiles } from '../support/temp-dirs.js';

const cog = join(repoRoot, 'bin', 'cog');
const fixtures = join(repoRoot, 'fixtures', 'models');
let tb: Testbed;
let dir: string;

const tempDir = tempDirsRemovedAfterTests();

before(async () => {
  tb = await ensureTestbed();
  dir = await tempDir('cogts-predict-');
});

test(
  'cog run builds the project and prints a string output; cog predict still works, deprecated',
  { timeout: 600_000 },
  async () => {
    const out = await execOk(cog, ['run', '-i', 'name=cog-ts'], {
      env: tb.env,
      cwd: join(fixtures, 'hello'),
    });
    assert.equal(out.stdout, 'hello cog-ts\n');
    assert.doesNotMatch(out.stderr, /deprecated/);
    assert.doesNotMatch(out.stderr, /of output:/, "a model that starts: none of the server's output");
    // upstream's old name: the same prediction, with upstream's warning on stderr
    const old = await execOk(cog, ['predict', '-i', 'name=old'], {
      env: tb.env,
      cwd: join(fixtures, 'hello'),
    });
    assert.equal(old.stdout, 'hello old\n');
    assert.match(old.stderr, /^cog: warning: "cog predict" is deprecated, use "cog run"$/m);
  },
);

test(
  "an HTTP_PROXY in cog.yaml's environment is the model's: the smoke test and cog run reach the server straight",
  { timeout: 600_000 },
  async () => {
    // a dead proxy (port 9, discard): a request to the model's server through it never arrives
    const proxy = 'http://127.0.0.1:9';
    const project = await tempDir('cogts-predict-proxy-');
    await writeFiles(project, {
      'cog.yaml': [
        'build:',
        '  python_version: "3.11"',
        'environment:',
        `  - HTTP_PROXY=${proxy}`,
        `  - http_proxy=${proxy}`,
        'run: "run.py:Runner"',
        '',
      ].join('\n'),
      'run.py': [
        'import os',
        'from cog import BaseRunner',
        '',
        '',
        'class Runner(BaseRunner):',
        '    def run(self, name: str = "x") -> str:',
        '        return name + " via " + os.environ.get("HTTP_PROXY", "<none>") + " " + os.environ.get("http_proxy", "<none>")',
        '',
      ].join('\n'),
    });
    await execOk(cog, ['build', '--smoke-test', '--progress', 'quiet'], { env: tb.env, cwd: project });
    const out = await execOk(cog, ['run', '-i', 'name=direct'], { env: tb.env, cwd: project });
    // the model's own environment is as cog.yaml set it
    assert.equal(out.stdout, `direct via ${proxy} ${proxy}\n`);
  },
);

test('cog run IMAGE runs a pushed image', { timeout: 600_000 }, async () => {
  const ref = `${tb.registry}/cogts-test/predict-hello:${Date.now().toString(36)}`;
  await execOk(cog, ['build', '-t', ref, '--push', '--progress', 'quiet'], {
    env: tb.env,
    cwd: join(fixtures, 'hello'),
  });
  const out = await execOk(cog, ['run', ref, '-i', 'name=image'], { env: tb.env, cwd: dir });
  assert.equal(out.stdout, 'hello image\n');
});

test(
  "Ctrl-C during cog run IMAGE says what it cancelled: the model's setup before READY, then the prediction; nothing is built",
  { timeout: 600_000 },
  async () => {
    const tag = `cogts-run-ctrlc-${Date.now().toString(36)}`;
    const project = await tempDir('cogts-predict-image-ctrlc-');
    await writeFiles(project, {
      'cog.yaml': "build:\n  python_version: '3.11'\npredict: 'predict.py:Predictor'\n",
      'predict.py': [
        'import os, subprocess',
        'from cog import BasePredictor',
        '',
        'class Predictor(BasePredictor):',
        '    def setup(self) -> None:',
        '        if "SLOW_SETUP" in os.environ:',
        '            subprocess.run(["sh", "-c", f"sleep 600 # {os.environ[\'SLOW_SETUP\']}-setup"])',
        '',
        '    def predict(self, tag: str) -> str:',
        '        subprocess.run(["sh", "-c", f"sleep 600 # {tag}-running"])',
        '        return tag',
        '',
      ].join('\n'),
    });
    const ref = `cogts-test/run-ctrlc:${Date.now().toString(36)}`;
    await execOk(cog, ['build', '-t', ref, '--progress', 'quiet'], { env: tb.env, cwd: project });
    const { spawn } = await import('node:child_process');
    // Ctrl-C once a process whose command line holds `running` shows on the host (the model's, in its exec)
    const interruptWhen = async (args: string[], running: string) => {
      const child = spawn(cog, ['run', ref, ...args], { env: tb.env, cwd: dir });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      const deadline = Date.now() + 300_000;
      while ((await pidsWith(running)).length === 0) {
        assert.ok(Date.now() < deadline, `${running} never started:\n${stderr}`);
        assert.equal(child.exitCode, null, `cog run exited early:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      // the probe's READY line, written before the prediction starts, reaches the CLI through
      // buildkitd's status stream, which the process table does not wait for
      await new Promise((r) => setTimeout(r, 1_000));
      child.kill('SIGINT');
      const code = await exited;
      const gone = Date.now() + 10_000;
      while ((await pidsWith(running)).length > 0) {
        assert.ok(Date.now() < gone, `the model's processes still run: ${await pidsWith(running)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      return { code, stderr };
    };

    const setup = await interruptWhen(['-i', 'tag=x', '-e', `SLOW_SETUP=${tag}`], `${tag}-setup`);
    assert.equal(setup.code, 130, setup.stderr);
    assert.match(setup.stderr, /SIGINT: cancelling the model's setup/);
    assert.match(setup.stderr, /interrupted \(SIGINT\): the model's setup was cancelled/);
    assert.doesNotMatch(setup.stderr, /prediction|the build was cancelled|cancelling the build/);

    // plain progress shows the run's whole log: the line the probe says READY with is not in it
    const prediction = await interruptWhen(['-i', `tag=${tag}`, '--progress', 'plain'], `${tag}-running`);
    assert.equal(prediction.code, 130, prediction.stderr);
    assert.match(prediction.stderr, /SIGINT: cancelling the prediction/);
    assert.match(prediction.stderr, /interrupted \(SIGINT\): the prediction was cancelled/);
    assert.doesNotMatch(prediction.stderr, /model's setup|the build was cancelled|cancelling the build/);
    assert.doesNotMatch(prediction.stderr, /cog: the model is READY/, 'the ready line is not shown');
  },
);

test('a Path input is sent as a file and a Path output is written', { timeout: 600_000 }, async () => {
  const input = join(dir, 'words.txt');
  await writeFile(input, 'quiet words\n');
  const output = join(dir, 'loud.txt');
  await execOk(cog, ['run', '-i', `text_file=@${input}`, '-o', output], {
    env: tb.env,
    cwd: join(fixtures, 'path-io'),
  });
  assert.equal(await readFile(output, 'utf8'), 'QUIET WORDS\n');

  // --json as upstream's: -o takes the response, the file output is written beside it and the JSON
  // holds its path
  const jsonOut = join(dir, 'answer.json');
  const answered = await execOk(
    cog,
    ['run', '--json', JSON.stringify({ text_file: `@${input}` }), '-o', jsonOut],
    {
      env: tb.env,
      cwd: join(fixtures, 'path-io'),
    },
  );
  assert.equal(answered.stdout, '');
  const response = JSON.parse(await readFile(jsonOut, 'utf8')) as { status: string; output: string };
  assert.equal(response.status, 'succeeded');
  assert.equal(response.output, join(dir, 'answer.txt'));
  assert.equal(await readFile(join(dir, 'answer.txt'), 'utf8'), 'QUIET WORDS\n');

  // -o DIR/ where a file is in the way: refused before anything runs
  const refused = await exec(
    cog,
    ['run', '-i', `text_file=@${input}`, '-o', `${output}/`, '--progress', 'plain'],
    { env: tb.env, cwd: join(fixtures, 'path-io') },
  );
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(
    refused.stderr,
    new RegExp(`^cog: error: -o ${output}/: ${output} is a file, not a directory$`, 'm'),
  );
  assert.doesNotMatch(refused.stderr, /run the model/);

  // an output over 16 MiB as the server reports it (base64 in JSON): buildkitd sends no gRPC message
  // that large, so the report is read back in pieces
  const big = join(dir, 'big.txt');
  const line = `${'abcdefghij'.repeat(9)}\n`;
  await writeFile(big, line.repeat(Math.ceil(14_000_000 / line.length)));
  const bigOut = join(dir, 'BIG.txt');
  await execOk(cog, ['run', '-i', `text_file=@${big}`, '-o', bigOut], {
    env: tb.env,
    cwd: join(fixtures, 'path-io'),
  });
  assert.equal(await readFile(bigOut, 'utf8'), (await readFile(big, 'utf8')).toUpperCase());

  // nothing of that run stays in buildkitd's cache: not its input (the synced request, ~14 MB), not its
  // output (the report in the probe's /out, ~19 MB of base64), not its root filesystem's changes
  for (const description of [
    'local source for cog-input',
    'mount /out from exec python /cog-smoke/probe.py',
    'mount / from exec python /cog-smoke/probe.py',
  ]) {
    const du = await execOk(
      cog,
      ['cache', 'du', '--json', '--verbose', '--filter', `description==${JSON.stringify(description)}`],
      { env: tb.env },
    );
    const left = (JSON.parse(du.stdout) as { entries: { size: number; inUse: boolean }[] }).entries;
    assert.deepEqual(
      left.filter((record) => record.size >= 10_000_000),
      [],
      `records "${description}" of 10 MB or more after the run`,
    );
  }
});

test(
  "a failed prediction's error holds what the model printed, in the default view too",
  { timeout: 600_000 },
  async () => {
    const project = await tempDir('cogts-predict-fails-');
    await writeFiles(project, {
      'cog.yaml': 'build:\n  python_version: "3.11"\nrun: "run.py:Runner"\n',
      'run.py': [
        'from cog import BaseRunner',
        '',
        '',
        'class Runner(BaseRunner):',
        '    def run(self, n: int = 1) -> str:',
        '        print(f"checking n={n}", flush=True)',
        '        raise ValueError("n is not welcome")',
        '',
      ].join('\n'),
    });
    const out = await exec(cog, ['run', '-i', 'n=7'], { env: tb.env, cwd: project });
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /^cog: error: Prediction failed with status "failed": .*n is not welcome/m);
    // coglet's error text starts "Prediction failed: Prediction failed:"; the status says it once
    assert.match(
      out.stderr,
      /^cog: error: Prediction failed with status "failed": ValueError: n is not welcome$/m,
    );
    assert.match(
      out.stderr,
      /^the model server's last \d+ lines of output:\n(?: {2}.*\n)*? {2}checking n=7$/m,
    );
    assert.match(out.stderr, /^hint: run again with --progress plain/m);

    // --json: the response is printed whole, and the error names the model's message too
    const json = await exec(cog, ['run', '--json', '{"n": 7}'], { env: tb.env, cwd: project });
    assert.equal(json.code, 1, json.stderr);
    assert.match(json.stderr, /^cog: error: Prediction failed with status "failed": .*n is not welcome/m);
    assert.match(
      json.stderr,
      /^cog: error: Prediction failed with status "failed": ValueError: n is not welcome$/m,
    );
    assert.match((JSON.parse(json.stdout) as { error: string }).error, /n is not welcome/);
  },
);

test(
  'a setup slower than --setup-timeout fails naming the flag and its value',
  { timeout: 600_000 },
  async () => {
    const project = await tempDir('cogts-predict-slow-');
    await writeFiles(project, {
      'cog.yaml': 'build:\n  python_version: "3.11"\nrun: "run.py:Runner"\n',
      'run.py': [
        'import time',
        'from cog import BaseRunner',
        '',
        '',
        'class Runner(BaseRunner):',
        '    def setup(self) -> None:',
        '        time.sleep(60)',
        '',
        '    def run(self) -> str:',
        '        return "late"',
        '',
      ].join('\n'),
    });
    const out = await exec(cog, ['run', '--setup-timeout', '2'], { env: tb.env, cwd: project });
    assert.equal(out.code, 1, out.stderr);
    assert.match(
      out.stderr,
      /^cog: error: the model did not become ready \(not READY within --setup-timeout 2 s; raise it if setup takes longer\)/m,
    );
  },
);

test(
  '-e that leaves the image without its python says -e set it, not only the probe command',
  { timeout: 600_000 },
  async () => {
    const out = await exec(cog, ['run', '-i', 'name=x', '-e', 'PATH=/nonexistent'], {
      env: tb.env,
      cwd: join(fixtures, 'hello'),
    });
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /^cog: error: the model's runtime could not start in its image: /m);
    assert.match(out.stderr, /^hint: -e sets PATH for it: check those values/m);
  },
);

test(
  '--use-replicate-token sends $REPLICATE_API_TOKEN as the request context, never in the progress',
  { timeout: 600_000 },
  async () => {
    const project = await tempDir('cogts-replicate-token-');
    await writeFiles(project, {
      'cog.yaml': 'build:\n  python_version: "3.11"\nrun: "predict.py:Predictor"\n',
      'predict.py': [
        'from cog import BasePredictor, current_scope',
        '',
        '',
        'class Predictor(BasePredictor):',
        '    def predict(self, name: str = "x") -> str:',
        '        return name + ":" + current_scope().context.get("replicate_api_token", "<none>")',
        '',
      ].join('\n'),
    });
    const token = `r8_e2e${Date.now().toString(36)}`;
    const env = { ...tb.env, REPLICATE_API_TOKEN: token };
    const sent = await execOk(cog, ['run', '-i', 'name=a', '--use-replicate-token', '--progress', 'plain'], {
      env,
      cwd: project,
    });
    assert.equal(sent.stdout, `a:${token}\n`);
    assert.ok(!sent.stderr.includes(token), 'the token is in no progress line');
    assert.match(sent.stderr, /run the model/, 'the plain progress was shown');

    const without = await execOk(cog, ['run', '-i', 'name=b'], { env, cwd: project });
    assert.equal(without.stdout, 'b:<none>\n', 'no flag: no token sent');

    const unset = { ...tb.env };
    delete unset.REPLICATE_API_TOKEN;
    const refused = await exec(cog, ['run', '-i', 'name=c', '--use-replicate-token'], {
      env: unset,
      cwd: project,
    });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /--use-replicate-token needs the REPLICATE_API_TOKEN environment variable/);
  },
);

test('an unknown input fails per field before the model starts', { timeout: 300_000 }, async () => {
  const started = Date.now();
  const out = await exec(cog, ['run', '-i', 'nosuch=1', '--progress', 'plain'], {
    env: tb.env,
    cwd: join(fixtures, 'hello'),
  });
  assert.notEqual(out.code, 0);
  assert.match(out.stderr, /nosuch/);
  assert.doesNotMatch(out.stderr, /run the model/);
  assert.ok(Date.now() - started < 30_000);
});

test('a failing setup() gives a clear error and a non-zero exit', { timeout: 600_000 }, async () => {
  const out = await exec(cog, ['run'], { env: tb.env, cwd: join(fixtures, 'setup-fails') });
  assert.notEqual(out.code, 0);
  assert.match(out.stderr, /Model setup failed/);
  assert.match(out.stderr, /weights not found: this fixture fails on purpose/);
  // the default (quiet) view shows the tail of the server's own output, readable, with the error in it
  assert.match(out.stderr, /^the model server's last \d+ lines of output:$/m);
  assert.match(out.stderr, /^ {2}ERROR Worker initialization failed error=.*weights not found/m);
  assert.doesNotMatch(out.stderr, /"timestamp"/, 'no raw JSON log lines');
});

test(
  'a model that fails to import shows its server output in the default view',
  { timeout: 600_000 },
  async () => {
    const project = await tempDir('cogts-predict-import-fails-');
    await writeFile(join(project, 'cog.yaml'), 'build:\n  python_version: "3.11"\nrun: "run.py:Runner"\n');
    await writeFile(
      join(project, 'run.py'),
      'import no_such_module_cogts\nfrom cog import BaseRunner\n\n\nclass Runner(BaseRunner):\n    def run(self) -> str:\n        return "x"\n',
    );
    const out = await exec(cog, ['run'], { env: tb.env, cwd: project });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /^the model server's last \d+ lines of output:$/m);
    assert.match(out.stderr, /^ {2}ERROR .*No module named 'no_such_module_cogts'/m);
    assert.match(out.stderr, /--progress plain/);
  },
);

test('cog train posts to /trainings', { timeout: 600_000 }, async () => {
  const out = await execOk(cog, ['train', '-i', 'steps=5'], { env: tb.env, cwd: join(fixtures, 'train') });
  assert.equal(out.stdout, 'trained for 5 steps\n');
});

test(
  "cog train's output is read by the training schema (a file, where run returns text)",
  { timeout: 600_000 },
  async () => {
    const project = await tempDir('cogts-train-file-');
    await writeFiles(project, {
      'cog.yaml': "build:\n  python_version: '3.11'\nrun: 'run.py:Runner'\ntrain: 'train.py:train'\n",
      'run.py':
        'from cog import BaseRunner\n\n\nclass Runner(BaseRunner):\n    def run(self) -> str:\n        return "predicting"\n',
      'train.py':
        'from cog import Path\n\n\ndef train(steps: int = 3) -> Path:\n    out = Path("/tmp/weights.txt")\n    out.write_text(f"trained for {steps} steps")\n    return out\n',
    });
    const dest = join(project, 'weights.txt');
    const out = await execOk(cog, ['train', '-i', 'steps=4', '-o', dest], { env: tb.env, cwd: project });
    // read by the run schema (text), the data URL was printed instead of written
    assert.equal(await readFile(dest, 'utf8'), 'trained for 4 steps');
    assert.doesNotMatch(out.stdout, /data:/);
  },
);

test(
  'cog train IMAGE on an image built without train is refused before its container starts',
  { timeout: 600_000 },
  async () => {
    const ref = `${tb.registry}/cogts-test/train-predictor-only:${Date.now().toString(36)}`;
    await execOk(cog, ['build', '-t', ref, '--push', '--progress', 'quiet'], {
      env: tb.env,
      cwd: join(fixtures, 'hello'),
    });
    // name=… is the predictor's input: the missing trainer is what is reported, not an input
    const out = await exec(cog, ['train', ref, '-i', 'name=x', '--progress', 'plain'], {
      env: tb.env,
      cwd: dir,
    });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, new RegExp(`^cog: error: ${ref.replace(/[.]/g, '\\.')} has no trainer: `, 'm'));
    assert.match(
      out.stderr,
      /^hint: the image was built without 'train' in cog\.yaml; add it, e\.g\. `train: "train\.py:train"`/m,
    );
    // the container never started: no run step, no server output
    assert.doesNotMatch(out.stderr, /run the model/);
    assert.doesNotMatch(out.stderr, /COG_TRAIN_TYPE_STUB|model server/);
  },
);

test(
  "cog train IMAGE checks -i against the trainer's inputs, not the predictor's",
  { timeout: 600_000 },
  async () => {
    const project = await tempDir('cogts-train-inputs-');
    await writeFiles(project, {
      'cog.yaml': "build:\n  python_version: '3.11'\nrun: 'run.py:Runner'\ntrain: 'train.py:train'\n",
      'run.py':
        'from cog import BaseRunner\n\n\nclass Runner(BaseRunner):\n    def run(self, prompt: str = "p") -> str:\n        return "predicting " + prompt\n',
      'train.py': 'def train(steps: int = 3) -> str:\n    return f"trained for {steps} steps"\n',
    });
    const ref = `${tb.registry}/cogts-test/train-inputs:${Date.now().toString(36)}`;
    await execOk(cog, ['build', '-t', ref, '--push', '--progress', 'quiet'], { env: tb.env, cwd: project });
    const trained = await execOk(cog, ['train', ref, '-i', 'steps=2'], { env: tb.env, cwd: dir });
    assert.equal(trained.stdout, 'trained for 2 steps\n');
    const refused = await exec(cog, ['train', ref, '-i', 'prompt=x', '--progress', 'plain'], {
      env: tb.env,
      cwd: dir,
    });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /^cog: error: unknown input "prompt"; valid inputs are: steps$/m);
    assert.doesNotMatch(refused.stderr, /run the model/);
  },
);

test(
  'int, float, bool, list and dict inputs are coerced; an iterator output prints as a list',
  { timeout: 600_000 },
  async () => {
    const out = await execOk(
      cog,
      [
        'run',
        '-i',
        'n=3',
        '-i',
        'x=2.5',
        '-i',
        'flag=true',
        '-i',
        'words=b',
        '-i',
        'words=c',
        '-i',
        'meta={"k": 1}',
      ],
      { env: tb.env, cwd: join(fixtures, 'types') },
    );
    assert.deepEqual(JSON.parse(out.stdout), ['n=3 x=2.5 flag=True', 'words=b,c', 'meta={"k": 1}']);
  },
);

test(
  'an input below its minimum is refused per field before the model starts',
  { timeout: 300_000 },
  async () => {
    const out = await exec(cog, ['run', '-i', 'n=0', '-i', 'meta={}'], {
      env: tb.env,
      cwd: join(fixtures, 'types'),
    });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /could not be validated/);
    assert.match(out.stderr, /- n: /);
    // text that is no integer is shown as given, with why it does not fit
    const fraction = await exec(cog, ['run', '-i', 'n=2.5'], { env: tb.env, cwd: join(fixtures, 'types') });
    assert.notEqual(fraction.code, 0);
    assert.match(fraction.stderr, /^ - n: expected integer, got 2\.5 \(not a whole number\)$/m);
    assert.doesNotMatch(fraction.stderr, /run the model/);
  },
);

test('two predictions at once do not collide', { timeout: 600_000 }, async () => {
  const runs = await Promise.all(
    ['left', 'right'].map((name) =>
      execOk(cog, ['run', '-i', `name=${name}`], { env: tb.env, cwd: join(fixtures, 'hello') }),
    ),
  );
  assert.deepEqual(
    runs.map((r) => r.stdout),
    ['hello left\n', 'hello right\n'],
  );
});

/** Host pids whose command line contains `marker` (processes in the daemon's containers are visible here). */
async function pidsWith(marker: string): Promise<number[]> {
  const out = await exec('pgrep', ['-f', marker]);
  return out.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

test('Ctrl-C during a prediction stops it and leaves nothing running', { timeout: 600_000 }, async () => {
  const marker = `cogts-ctrl-c-${Date.now().toString(36)}`;
  const project = await tempDir('cogts-predict-ctrlc-');
  {
    await writeFile(
      join(project, 'cog.yaml'),
      "build:\n  python_version: '3.11'\npredict: 'predict.py:Predictor'\n",
    );
    await writeFile(
      join(project, 'predict.py'),
      [
        'import subprocess',
        'from cog import BasePredictor',
        '',
        'class Predictor(BasePredictor):',
        '    def predict(self, tag: str) -> str:',
        '        subprocess.run(["sh", "-c", f"sleep 600 # {tag}-running"])',
        '        return tag',
        '',
      ].join('\n'),
    );
    const { spawn } = await import('node:child_process');
    const child = spawn(cog, ['run', '-i', `tag=${marker}`], { env: tb.env, cwd: project });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // the prediction runs once its process shows on the host (the CLI's own command line has no "-running")
    const running = `${marker}-running`;
    const deadline = Date.now() + 300_000;
    while ((await pidsWith(running)).length === 0) {
      assert.ok(Date.now() < deadline, `the prediction never started:\n${stderr}`);
      assert.equal(child.exitCode, null, `cog predict exited early:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // the probe's READY line reaches the CLI through buildkitd's status stream, not the process table
    await new Promise((r) => setTimeout(r, 1_000));
    const interrupted = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    assert.ok(Date.now() - interrupted < 20_000, `stopped within 20 s (took ${Date.now() - interrupted} ms)`);
    assert.equal(code, 130, stderr);
    // the project was built and the model is READY: what is cancelled is the prediction
    assert.match(stderr, /SIGINT: cancelling the prediction/);
    assert.match(stderr, /interrupted \(SIGINT\): the prediction was cancelled/);
    // the exec and everything in it are gone from the daemon host
    const gone = Date.now() + 10_000;
    while ((await pidsWith(running)).length > 0) {
      assert.ok(Date.now() < gone, `the prediction's processes still run: ${await pidsWith(running)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const ref = /cog: build (\w+) on/.exec(stderr)?.[1];
    assert.ok(ref, stderr);
    // the daemon records the cancelled build as finished (it may take a moment to settle)
    const settled = Date.now() + 15_000;
    for (;;) {
      const histories = await execOk('buildctl', ['debug', 'histories'], { env: tb.env });
      const line = histories.stdout.split('\n').find((l) => l.includes(ref));
      if (!line || !/STARTED|RUNNING/.test(line)) break;
      assert.ok(Date.now() < settled, `the build is still running on the daemon: ${line}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
});
