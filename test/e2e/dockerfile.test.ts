// Hidden `cog build --dockerfile` (as upstream): BuildKit's Dockerfile frontend builds the user's own
// Dockerfile with the project as its context, and cog-ts makes a model image of the result — the
// labels, the OpenAPI schema in .cog/ under its WORKDIR, the pip freeze — and smoke-tests it.
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { exec } from '../support/exec.js';
import { layerEntries, pushedConfig, pushedManifest } from '../support/pushed-image.js';
import { stepsFromPlainProgress } from '../support/plain-steps.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
const tag = Date.now().toString(36);
const tempDir = tempDirsRemovedAfterTests();
let tb: Testbed;
let scratchDir: string;
let project: string;

// the user's own build: no tini, no uv, cog from PyPI with pip, the model under /src; behind a proxy
// with its own CA (the test bed's COG_CA_CERT) the Dockerfile trusts it itself, as a user's would
const dockerfile = `FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1
COPY host-ca.crt /usr/local/share/ca-certificates/host-ca.crt
RUN cat /usr/local/share/ca-certificates/host-ca.crt >> /etc/ssl/certs/ca-certificates.crt
ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=cache,target=/root/.cache/pip pip install --disable-pip-version-check cog
WORKDIR /src
COPY . /src
CMD ["python", "-m", "cog.server.http"]
`;

before(async () => {
  tb = await ensureTestbed();
  scratchDir = await tempDir('cogts-dockerfile-');
  project = join(scratchDir, 'hello');
  await cp(join(repoRoot, 'fixtures', 'models', 'hello'), project, { recursive: true });
  await writeFile(join(project, 'Dockerfile'), dockerfile);
  await writeFile(join(project, 'host-ca.crt'), tb.caCert ? await readFile(tb.caCert) : '');
});

const env = () => ({ ...tb.env, COG_IMAGE_STORE: join(scratchDir, 'store') });

interface ImageConfig {
  config: {
    Labels?: Record<string, string>;
    Cmd?: string[];
    Entrypoint?: string[] | null;
    WorkingDir?: string;
  };
}

test(
  '--dockerfile builds the user’s Dockerfile into a labelled model image that starts READY',
  { timeout: 900_000 },
  async () => {
    const ref = `${tb.registry}/cogts-test/dockerfile-hello:${tag}`;
    const out = await exec(
      cog,
      ['build', '-t', ref, '--push', '--smoke-test', '--dockerfile', 'Dockerfile', '--progress', 'plain'],
      { env: env(), cwd: project },
    );
    assert.equal(out.code, 0, out.stderr.slice(-4000));
    assert.match(out.stderr, /^Smoke test: .*READY; prediction succeeded, output "hello world"$/m);
    // the Dockerfile's steps ran, not the plan's
    const steps = stepsFromPlainProgress(out.stderr);
    const all = [...steps.ran, ...steps.cached];
    assert.ok(
      all.some((s) => /pip install --disable-pip-version-check cog/.test(s)),
      all.join(', '),
    );
    assert.ok(!all.some((s) => /install tini|copy uv/.test(s)), all.join(', '));

    const image = await pushedConfig<ImageConfig>(ref);
    const labels = image.config.Labels ?? {};
    assert.deepEqual(image.config.Cmd, ['python', '-m', 'cog.server.http']);
    assert.equal(image.config.WorkingDir, '/src');
    const config = JSON.parse(labels['run.cog.config'] ?? '{}') as { predict?: string };
    assert.equal(config.predict, 'predict.py:Predictor');
    const schema = JSON.parse(labels['run.cog.openapi_schema'] ?? '{}') as {
      paths?: Record<string, unknown>;
    };
    assert.ok(schema.paths && '/predictions' in schema.paths);
    assert.match(labels['run.cog.pip_freeze'] ?? '', /^cog==/m);
    assert.match(labels['run.cog.version'] ?? '', /^\d+\.\d+/);
    assert.equal(labels['run.cog.has_init'], 'true');

    // the schema sits in .cog/ under the WORKDIR, where coglet reads it
    const entries = await layerEntries(ref, join(scratchDir, 'image'));
    assert.ok(entries.includes('src/.cog/openapi_schema.json'), 'the schema file is in the image');
    assert.ok(entries.includes('src/predict.py'), 'the Dockerfile copied the project');
  },
);

test(
  '--dockerfile with two platforms: the frontend builds each, one index, both smoke-tested',
  { timeout: 1_800_000 },
  async () => {
    const ref = `${tb.registry}/cogts-test/dockerfile-multi:${tag}`;
    const out = await exec(
      cog,
      [
        'build',
        '-t',
        ref,
        '--push',
        '--smoke-test',
        '--dockerfile',
        'Dockerfile',
        '--platform',
        'linux/amd64,linux/arm64',
        '--progress',
        'plain',
      ],
      { env: env(), cwd: project },
    );
    assert.equal(out.code, 0, out.stderr.slice(-4000));
    for (const platform of ['amd64', 'arm64'])
      assert.match(
        out.stderr,
        new RegExp(`^Smoke test \\(linux/${platform}\\): /health-check READY; prediction succeeded`, 'm'),
      );
    const index = await pushedManifest<{ manifests: { platform?: { architecture: string } }[] }>(ref);
    assert.deepEqual(
      index.manifests.map((m) => m.platform?.architecture),
      ['amd64', 'arm64'],
    );
    const arm64 = await pushedConfig<ImageConfig & { architecture: string }>(ref, 'arm64');
    assert.equal(arm64.architecture, 'arm64');
    assert.match(arm64.config.Labels?.['run.cog.pip_freeze'] ?? '', /^cog==/m);
  },
);

test('--dockerfile refuses what it cannot honour, before building, naming the flag', async () => {
  const cases: [string[], RegExp][] = [
    [['--dockerfile', 'Nope.Dockerfile'], /--dockerfile Nope\.Dockerfile: no such file/],
    [['--dockerfile', '.'], /--dockerfile \.: not a file/],
    [
      ['--dockerfile', 'Dockerfile', '--use-cog-base-image=false'],
      /--use-cog-base-image and --dockerfile are mutually exclusive/,
    ],
    [['--dockerfile', 'Dockerfile', '--precompile'], /--precompile: not with --dockerfile/],
  ];
  for (const [flags, message] of cases) {
    const out = await exec(cog, ['build', '-t', 'never:dev', ...flags], {
      env: { ...env(), BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock' },
      cwd: project,
    });
    assert.notEqual(out.code, 0, flags.join(' '));
    assert.match(out.stderr, message, out.stderr);
  }
});
