// Golden plans and LLB for every fixture model: `cog debug --format json` must not change unnoticed.
// Regenerate with COG_UPDATE_GOLDEN=1 after an intended change, and review the diff.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { debugPlan, formatPlan, sourceLine } from '../../src/cli/debug-plan.js';
import { planBuild } from '../../src/plan/plan.js';
import { maskUrlCredentials } from '../../src/registry/redact.js';
import { exec } from '../support/exec.js';
import { repoRoot } from '../support/testbed.js';

const models = join(repoRoot, 'fixtures', 'models');
const golden = join(repoRoot, 'fixtures', 'golden');
// no CA certificate, fixed git labels: the output depends on the fixture alone
const env: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  GITHUB_SHA: 'golden-sha',
  GITHUB_REF_NAME: 'golden-ref',
};

async function debugJson(name: string): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await debugPlan(
    { file: 'cog.yaml', format: 'json', useCudaBaseImage: 'auto' },
    { env, stdin: new PassThrough(), stdout: out, stderr: new PassThrough() },
    join(models, name),
  );
  return Buffer.concat(chunks).toString('utf8');
}

for (const name of await readdir(models)) {
  test(`golden plan and LLB: ${name}`, async () => {
    const actual = await debugJson(name);
    const file = join(golden, `${name}.json`);
    if (process.env.COG_UPDATE_GOLDEN === '1') await writeFile(file, actual);
    assert.equal(
      actual,
      await readFile(file, 'utf8'),
      `${file} differs; rerun with COG_UPDATE_GOLDEN=1 if intended`,
    );
    const parsed = JSON.parse(actual) as {
      plan: Parameters<typeof formatPlan>[0];
      llb: { digest: string }[];
    };
    assert.ok(parsed.llb.length > 5);
    assert.equal(
      formatPlan(parsed.plan),
      formatPlan(planBuild((JSON.parse(actual) as { input: Parameters<typeof planBuild>[0] }).input)),
    );
  });
}

test('the gpu fixture plans a CUDA base with --break-system-packages', async () => {
  const parsed = JSON.parse(await debugJson('gpu')) as {
    plan: { base: string; steps: { shell?: string }[] };
  };
  assert.equal(parsed.plan.base, 'nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04');
  assert.ok(parsed.plan.steps.some((s) => s.shell?.includes('uv pip install --break-system-packages')));
});

test('the text plan names the cog-base image a build tries first, and the plan shown is the fallback', async () => {
  const run = async (extraEnv: NodeJS.ProcessEnv, useCogBaseImage?: boolean) => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await debugPlan(
      { file: 'cog.yaml', format: 'text', useCogBaseImage },
      { env: { ...env, ...extraEnv }, stdin: new PassThrough(), stdout: out, stderr: new PassThrough() },
      join(models, 'hello'),
    );
    return Buffer.concat(chunks).toString('utf8');
  };
  const text = await run({ COG_REGISTRY_HOST: 'registry.example:5000' });
  assert.match(text, /^cog-base {2}registry\.example:5000\/cog-base:python3\.11 is tried first/);
  assert.match(text, /\nbase {2}python:3\.11-slim /);
  // the version label is the installed SDK's, as the build writes it (it showed cog-ts's own version)
  assert.match(
    text,
    /^label {2}run\.cog\.version=\(the installed cog SDK's version, read from the built image; else \d+\.\d+\.\d+\)$/m,
  );
  // --use-cog-base-image, as cog build takes it
  const never = await run({ COG_REGISTRY_HOST: 'registry.example:5000' }, false);
  assert.match(never, /^base {2}python:3\.11-slim /, 'false: no cog-base line');
  const required = await run({ COG_REGISTRY_HOST: 'registry.example:5000' }, true);
  assert.match(required, /^cog-base {2}registry\.example:5000\/cog-base:python3\.11 is required/);
});

test('cog debug masks the credentials of URLs in requirements, in every format that shows text', async () => {
  const project = await mkdtemp(join(tmpdir(), 'cogts-debug-creds-'));
  try {
    await writeFile(
      join(project, 'cog.yaml'),
      'build:\n  python_version: "3.11"\n  python_requirements: requirements.txt\n  run:\n    - pip download --index-url https://bob:sekret-run@pypi.example/simple x\nrun: predict.py:Predictor\n',
    );
    await writeFile(join(project, 'predict.py'), await readFile(join(models, 'hello', 'predict.py'), 'utf8'));
    await writeFile(
      join(project, 'requirements.txt'),
      '--extra-index-url=https://u:sekret-pass@pypi.example/simple\nsix==1.16.0\ngit+https://ghp_sekrettoken@github.com/o/r.git\n',
    );
    const cog = join(repoRoot, 'bin', 'cog');
    const runEnv = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent.sock' };
    for (const format of ['text', 'json']) {
      const out = await exec(cog, ['debug', '--format', format], { cwd: project, env: runEnv });
      assert.equal(out.code, 0, out.stderr);
      // the text of the written requirements file too, which the JSON shows in base64
      const decoded = [...out.stdout.matchAll(/"([A-Za-z0-9+/]{16,}={0,2})"/g)]
        .map((m) => Buffer.from(m[1] ?? '', 'base64').toString('utf8'))
        .join('\n');
      for (const shown of [out.stdout, decoded]) assert.doesNotMatch(shown, /sekret/, format);
      assert.match(out.stdout, /https:\/\/bob:\*\*\*@pypi\.example\/simple/, format);
      if (format === 'json') {
        assert.match(out.stdout, /https:\/\/u:\*\*\*@pypi\.example\/simple/);
        assert.match(decoded, /git\+https:\/\/\*\*\*@github\.com\/o\/r\.git/);
      }
    }
  } finally {
    await rm(project, { recursive: true, force: true });
  }
});

test('maskUrlCredentials keeps the user and masks the secret, or masks a lone token', () => {
  assert.equal(
    maskUrlCredentials(
      '--index-url https://__token__:pypi-abc@x.example/simple and http://tok@h/p, ftp://h/x',
    ),
    '--index-url https://__token__:***@x.example/simple and http://***@h/p, ftp://h/x',
  );
  assert.equal(
    maskUrlCredentials('user@example.com, git@github.com:o/r'),
    'user@example.com, git@github.com:o/r',
  );
});

test("the source line names each excluded pattern once (cog's .cog and cog init's .dockerignore both list it)", () => {
  const line = sourceLine({ exclude: ['.cog', '.git', '.cog', '__pycache__', '.git'], files: [] });
  assert.equal(
    line,
    'source  project -> /src (excluding .cog, __pycache__, .git)   [parallel branch, merged last]',
  );
  // the copy kept is the last: the last pattern matching a path decides, so `!.cog` stays overridden
  assert.match(sourceLine({ exclude: ['.cog', '!.cog', '.cog'], files: [] }), /\(excluding !\.cog, \.cog\)/);
  assert.match(
    sourceLine({ exclude: ['.cog'], files: [{ path: '/src/.cog/openapi_schema.json', content: '{}' }] }),
    /\(excluding \.cog\) \+ \/src\/\.cog\/openapi_schema\.json {3}\[/,
  );
});
