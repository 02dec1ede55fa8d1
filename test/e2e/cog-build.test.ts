// `cog build` of every fixture model on the test bed: labels, a READY server inside the image, the
// local image store, and caching (no-op rebuild, source-only rebuild).
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { exec, execOk } from '../support/exec.js';
import { type BuiltPair, buildPairRetryingDrift, imageFacts } from '../support/image-difference.js';
import { layerEntries, pushedConfig } from '../support/pushed-image.js';
import { stepsFromPlainProgress } from '../support/plain-steps.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

const cog = join(repoRoot, 'bin', 'cog');
const fixtures = join(repoRoot, 'fixtures', 'models');
let tb: Testbed;
let scratchDir: string;
const tag = Date.now().toString(36);

const tempDir = tempDirsRemovedAfterTests();

before(async () => {
  tb = await ensureTestbed();
  scratchDir = await tempDir('cogts-build-');
});

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...tb.env, COG_IMAGE_STORE: join(scratchDir, 'store'), ...extra };
}

interface Labels {
  [name: string]: string;
}

async function labelsOf(ref: string): Promise<Labels> {
  const config = await pushedConfig<{
    config: { Labels: Labels; Entrypoint: string[]; Cmd: string[]; WorkingDir: string; Env: string[] };
  }>(ref);
  return {
    ...config.config.Labels,
    '@entrypoint': JSON.stringify(config.config.Entrypoint),
    '@cmd': JSON.stringify(config.config.Cmd),
    '@env': JSON.stringify(config.config.Env),
  };
}

const models: {
  name: string;
  flags?: string[];
  env?: NodeJS.ProcessEnv;
  /** the smoke test's prediction with default inputs (absent: the model has required inputs) */
  output?: RegExp;
  check?: (labels: Labels) => void;
}[] = [
  { name: 'hello', output: /^"hello world"$/ },
  {
    name: 'requirements',
    output: /^"six 1\.17\.0: x"$/,
    check: (l) => assert.match(l['run.cog.pip_freeze'] ?? '', /^six==1\.17\.0$/m),
  },
  { name: 'system-packages', output: /^"\[\\"a\\"\]"$/ },
  {
    name: 'build-run-secret',
    flags: ['--secret', 'id=token,env=COGTS_BUILD_TOKEN'],
    env: { COGTS_BUILD_TOKEN: 'not-a-real-token-but-secret' },
    // sha256 of the secret, cut to 12 characters by the build.run command
    output: /^"[0-9a-f]{12}"$/,
  },
  {
    name: 'environment',
    output: /^"hi there\|small\|hi there"$/,
    check: (l) => {
      const envList = JSON.parse(l['@env'] ?? '[]') as string[];
      assert.ok(envList.includes('GREETING=hi there') && envList.includes('MODEL_SIZE=small'));
    },
  },
  {
    name: 'local-wheel',
    output: /^"greetings, wheel"$/,
    check: (l) => assert.match(l['run.cog.pip_freeze'] ?? '', /tinygreet/),
  },
  {
    name: 'path-io',
    check: (l) => {
      const schema = JSON.parse(l['run.cog.openapi_schema'] ?? '{}') as {
        components: {
          schemas: {
            Input: { properties: Record<string, { format?: string }> };
            Output: { format?: string };
          };
        };
      };
      assert.equal(schema.components.schemas.Input.properties.text_file?.format, 'uri');
      assert.equal(schema.components.schemas.Output.format, 'uri');
    },
  },
  {
    name: 'train',
    output: /^"predicting"$/,
    check: (l) => {
      const schema = JSON.parse(l['run.cog.openapi_schema'] ?? '{}') as { paths: Record<string, unknown> };
      assert.ok('/trainings' in schema.paths && '/predictions' in schema.paths);
      assert.match(l['@env'] ?? '', /COG_TRAIN_TYPE_STUB=train\.py:train/);
    },
  },
  {
    name: 'gpu',
    output: /^"cuda base: 11\.8\.0"$/,
    check: (l) => {
      const config = JSON.parse(l['run.cog.config'] ?? '{}') as { build: { cuda?: string; cudnn?: string } };
      assert.equal(config.build.cuda, '11.8');
      assert.equal(config.build.cudnn, '8');
      assert.match(l['@env'] ?? '', /CUDA_VERSION=11\.8\.0/);
    },
  },
];

describe('every fixture builds, carries the labels and starts READY', { concurrency: 1 }, () => {
  for (const model of models) {
    test(model.name, { timeout: 900_000 }, async () => {
      const ref = `${tb.registry}/cogts-test/model-${model.name}:${tag}`;
      const out = await exec(
        cog,
        ['build', '-t', ref, '--push', '--smoke-test', '--progress', 'plain', ...(model.flags ?? [])],
        { env: env(model.env), cwd: join(fixtures, model.name) },
      );
      assert.equal(out.code, 0, out.stderr.slice(-4000));
      const smoke = /^Smoke test: \/health-check (\w+)(?:; prediction (\w+), output (.*))?$/m.exec(
        out.stderr,
      );
      assert.ok(smoke, out.stderr.slice(-2000));
      assert.equal(smoke[1], 'READY');
      if (model.output) {
        assert.equal(smoke[2], 'succeeded');
        assert.match(smoke[3] ?? '', model.output);
      } else assert.equal(smoke[2], undefined);
      assert.match(
        out.stderr,
        new RegExp(`Image built as ${ref.replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64} and pushed`),
      );
      const labels = await labelsOf(ref);
      // the installed SDK's version, as in pip freeze; cog-ts's own version has its own label
      const sdk = /^cog==(\S+)$/m.exec(labels['run.cog.pip_freeze'] ?? '')?.[1];
      assert.ok(sdk);
      assert.equal(labels['run.cog.version'], sdk);
      assert.match(labels['run.cog-ts.version'] ?? '', /^\d+\.\d+\.\d+/);
      const config = JSON.parse(labels['run.cog.config'] ?? '') as { build: { python_version: string } };
      assert.equal(config.build.python_version, '3.11');
      const schema = JSON.parse(labels['run.cog.openapi_schema'] ?? '') as {
        openapi: string;
        info: { title: string };
      };
      assert.equal(schema.openapi, '3.0.2');
      assert.equal(schema.info.title, 'Cog');
      assert.match(labels['run.cog.pip_freeze'] ?? '', /^cog==\d/m);
      assert.equal(labels['run.cog.has_init'], 'true');
      assert.equal(labels['@entrypoint'], '["/sbin/tini","--"]');
      assert.equal(labels['@cmd'], '["python","-m","cog.server.http"]');
      model.check?.(labels);
      // every plan shape (branches, cog-base, CUDA, local wheels) names each of its layers itself
      assertOwnHistory(await pushedConfig<HistoryConfig>(ref));
      if (model.name === 'build-run-secret') {
        // the secret's value is in no layer and no label
        const dir = join(scratchDir, 'secret-image');
        await execOk('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${dir}`]);
        const hits = await execOk('bash', [
          '-c',
          `for f in "${dir}"/*; do (zcat -f "$f" 2>/dev/null || cat "$f"); done | grep -a -c not-a-real-token-but-secret || true`,
        ]);
        assert.equal(hits.stdout.trim(), '0');
      }
      if (model.name === 'system-packages') {
        // apt's lists live in a cache mount: no layer holds them, while the packages are there
        const entries = await layerEntries(ref, join(scratchDir, 'system-packages-image'));
        assert.ok(entries.includes('usr/bin/jq'), 'the listing sees the installed package');
        assert.deepEqual(
          entries.filter((e) => /^var\/lib\/apt\/lists\/./.test(e)),
          [],
          'no package list in any layer',
        );
      }
    });
  }
});

interface HistoryConfig {
  rootfs: { diff_ids: string[] };
  history?: { created_by?: string; empty_layer?: boolean; comment?: string }[];
}

/**
 * The image's history is cog's own: one non-empty entry per layer, none written by BuildKit's exporter
 * (which names a layer by its cache record: "mount / from exec …", or "imported sha256:…" when the
 * layer came from an imported cache, so a cache-hot build changed the image's digest).
 */
function assertOwnHistory(config: HistoryConfig): void {
  const layers = (config.history ?? []).filter((h) => h.empty_layer !== true);
  assert.equal(layers.length, config.rootfs.diff_ids.length, JSON.stringify(config.history, null, 1));
  for (const entry of layers)
    assert.doesNotMatch(entry.created_by ?? '', /mount \/ from exec|^imported |created by buildkit/);
  // the exporter marks the entries it adds for layers the history lacks: cog counted too few
  const added = (config.history ?? []).filter((h) => h.comment === 'buildkit.exporter.image.v0');
  assert.deepEqual(added, [], "BuildKit added history entries: the plan's layer count is off");
}

test('the image history has one entry per layer, named by cog’s steps', { timeout: 600_000 }, async () => {
  const ref = `${tb.registry}/cogts-test/history:${tag}`;
  // --pull: always solve and export (an up-to-date build would push the image it recorded)
  const out = await exec(cog, ['build', '-t', ref, '--push', '--pull', '--progress', 'quiet'], {
    env: env(),
    cwd: join(fixtures, 'hello'),
  });
  assert.equal(out.code, 0, out.stderr.slice(-3000));
  const config = await pushedConfig<HistoryConfig>(ref);
  assertOwnHistory(config);
  const names = (config.history ?? []).map((h) => h.created_by);
  assert.equal(names.at(-1), 'copy the project to /src');
  assert.ok(names.includes('install tini'), names.join('\n'));
});

test('without --push the image lands in the local OCI image store', { timeout: 600_000 }, async () => {
  const out = await exec(cog, ['build', '-t', 'hello-store:dev', '--progress', 'quiet'], {
    env: env(),
    cwd: join(fixtures, 'hello'),
  });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /local image store/);
  const inspected = JSON.parse(
    (await execOk('skopeo', ['inspect', `oci:${join(scratchDir, 'store')}:hello-store:dev`])).stdout,
  ) as { Labels: Labels };
  assert.equal(inspected.Labels['run.cog.has_init'], 'true');
});

test(
  '--skip-schema-validation builds without a schema, and the smoke test still reaches READY',
  { timeout: 600_000 },
  async () => {
    const project = join(fixtures, 'hello');
    const store = join(scratchDir, 'store');
    const out = await exec(
      cog,
      ['build', '-t', 'skip-schema:dev', '--skip-schema-validation', '--smoke-test', '--progress', 'quiet'],
      { env: env(), cwd: project },
    );
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /Smoke test: \/health-check READY/);
    const inspected = JSON.parse(
      (await execOk('skopeo', ['inspect', `oci:${store}:skip-schema:dev`])).stdout,
    ) as {
      Labels: Labels;
    };
    assert.equal(inspected.Labels['run.cog.openapi_schema'], undefined, 'no schema label');
    assert.equal(inspected.Labels['run.cog.has_init'], 'true', 'the other labels are there');
  },
);

test(
  'an SDK below 0.17: the schema label is the one the SDK writes in the image, and cog run follows it',
  { timeout: 600_000 },
  async () => {
    const project = await tempDir('cogts-legacy-sdk-');
    await writeFile(
      join(project, 'cog.yaml'),
      "build:\n  python_version: '3.11'\n  sdk_version: '0.16.12'\nrun: 'predict.py:Predictor'\n",
    );
    await writeFile(
      join(project, 'predict.py'),
      [
        'from cog import BasePredictor, Input',
        '',
        '',
        'class Predictor(BasePredictor):',
        '    def predict(self, name: str = Input(default="world"), seed: int = Input(default=None)) -> str:',
        '        return f"hello {name} {seed}"',
        '',
      ].join('\n'),
    );
    const out = await exec(cog, ['build', '-t', 'legacy-sdk:dev', '--progress', 'plain'], {
      env: env(),
      cwd: project,
    });
    assert.equal(out.code, 0, out.stderr.slice(-3000));
    assert.match(out.stderr, /read the OpenAPI schema from the model \(cog SDK below 0\.17\)/);
    const inspected = JSON.parse(
      (await execOk('skopeo', ['inspect', `oci:${join(scratchDir, 'store')}:legacy-sdk:dev`])).stdout,
    ) as { Labels: Labels };
    const schema = JSON.parse(inspected.Labels['run.cog.openapi_schema'] ?? '{}') as {
      components: { schemas: { Input: { required?: string[]; properties: Record<string, unknown> } } };
    };
    // the schema file's layer has its history entry too
    const stored = `oci:${join(scratchDir, 'store')}:legacy-sdk:dev`;
    assertOwnHistory(
      JSON.parse((await execOk('skopeo', ['inspect', '--config', stored])).stdout) as HistoryConfig,
    );
    // the static reading makes `seed` (default None) required; the 0.16 SDK's pydantic schema does not
    const input = schema.components.schemas.Input;
    assert.deepEqual(Object.keys(input.properties), ['name', 'seed']);
    assert.ok(!(input.required ?? []).includes('seed'), JSON.stringify(input));
    // cog run's check of the inputs reads that label: seed may be given, name left out
    const run = await exec(cog, ['run', 'legacy-sdk:dev', '-i', 'seed=3'], { env: env(), cwd: project });
    assert.equal(run.code, 0, run.stderr.slice(-2000));
    assert.equal(run.stdout.trim(), 'hello world 3');
  },
);

test(
  'a no-op rebuild runs nothing; a predict.py edit runs only the source copy',
  { timeout: 600_000 },
  async () => {
    const project = join(scratchDir, 'cache-project');
    await cp(join(fixtures, 'requirements'), project, { recursive: true });
    const ref = `${tb.registry}/cogts-test/cache-check:${tag}`;
    // --pull: always solve, so this is BuildKit's cache at work (up-to-date.test.ts covers the record)
    const buildOnce = async () => {
      const out = await exec(cog, ['build', '-t', ref, '--push', '--pull', '--progress', 'plain'], {
        env: env(),
        cwd: project,
      });
      assert.equal(out.code, 0, out.stderr.slice(-3000));
      return stepsFromPlainProgress(out.stderr);
    };
    await buildOnce();
    const noop = await buildOnce();
    assert.deepEqual(noop.ran, [], `a no-op rebuild ran: ${noop.ran.join(', ')}`);
    assert.ok(noop.cached.includes('install requirements'));

    const runPy = join(project, 'run.py');
    await writeFile(
      runPy,
      `${await readFile(runPy, 'utf8')}\n# an edit that changes no signature (${Date.now()})\n`,
    );
    const edited = await buildOnce();
    assert.deepEqual(
      edited.ran,
      ['copy the project to /src'],
      `after editing run.py these ran: ${edited.ran.join(', ')}`,
    );
  },
);

test('invalid cog.yaml fails before building, naming the field and line', async () => {
  const project = join(scratchDir, 'invalid');
  await cp(join(fixtures, 'hello'), project, { recursive: true });
  await writeFile(
    join(project, 'cog.yaml'),
    'build:\n  python_version: "3.9"\nrun: "predict.py:Predictor"\n',
  );
  const out = await exec(cog, ['build'], { env: env(), cwd: project });
  assert.notEqual(out.code, 0);
  assert.match(out.stderr, /build\.python_version/);
  assert.match(out.stderr, /cog\.yaml:2/);
});

test(
  '--timestamp makes a rebuild from scratch give the same image digest',
  // a pair of builds from scratch, and one more pair when a package release came between the first two
  { timeout: 1_800_000 },
  async (t) => {
    const buildPair = async (attempt: number): Promise<BuiltPair> => {
      const digests: string[] = [];
      const refs: string[] = [];
      for (const round of [1, 2]) {
        const ref = `${tb.registry}/cogts-test/reproducible:${tag}-${attempt > 1 ? `${attempt}-` : ''}${round}`;
        refs.push(ref);
        const out = await exec(
          cog,
          ['build', '-t', ref, '--push', '--no-cache', '--timestamp', '1700000000', '--progress', 'quiet'],
          { env: env(), cwd: join(fixtures, 'requirements') },
        );
        assert.equal(out.code, 0, out.stderr.slice(-3000));
        const digest = /@(sha256:[0-9a-f]{64}) and pushed/.exec(out.stderr)?.[1];
        assert.ok(digest, out.stderr);
        digests.push(digest);
      }
      return { digests: digests as [string, string], refs: refs as [string, string] };
    };
    // cog's dependencies are not pinned: a release on PyPI between the two builds changes the pip freeze
    // and its install layer, which says nothing of the build; then (only then) the pair is built again
    const { pair, why } = await buildPairRetryingDrift(buildPair, imageFacts, (line) => t.diagnostic(line));
    // on a mismatch, the message says which steps' layers differ, and whether the package index changed
    assert.equal(pair.digests[0], pair.digests[1], `the two builds differ:\n${why}`);
  },
);
