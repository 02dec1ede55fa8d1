import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { delimiter, join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { plannedCommands } from '../../src/cli/commands.js';
import { debugDetail } from '../../src/cli/main.js';
import { CogError, NotImplementedError } from '../../src/errors.js';
import { exec } from '../support/exec.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';
import { repoRoot } from '../support/testbed.js';

const cog = `${repoRoot}bin/cog`;
const tempDir = tempDirsRemovedAfterTests();

describe('bin/cog', () => {
  test('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile(`${repoRoot}package.json`, 'utf8')) as { version: string };
    const result = await exec(cog, ['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), `cog version ${pkg.version} (cog-ts)`);
  });

  test("each command's help says what it takes: IMAGE from the store first, every -o of build, debug's text default, no default for required names", async () => {
    const help = async (...args: string[]) => {
      const result = await exec(cog, [...args, '--help']);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.replace(/\s+/g, ' ');
    };
    for (const command of ['run', 'train', 'serve']) {
      const text = await help(command);
      assert.match(text, /image an image in the local image store, else a registry reference/, command);
      assert.doesNotMatch(text, /a model image in a registry/, command);
    }
    assert.match(
      await help('build'),
      /-o, --output type=oci\|docker\|tar,dest=FILE \(- = stdout\) \| type=image,name=REF\[,push=true\]/,
    );
    const debug = await help('debug');
    assert.match(
      debug,
      /Print the build plan for cog\.yaml as text \(--format json or llb for the LLB graph\)/,
    );
    assert.doesNotMatch(debug, /plan and the LLB graph/);
    assert.match(await help(), /cog debug Print the build plan for cog\.yaml as text/);
    const rm = await help('image', 'rm');
    assert.match(rm, /names image names \[array\] \[required\] Options/);
    const predict = await help('predict');
    assert.match(
      predict,
      /^cog predict \[image\] Run a prediction on the project .*Deprecated: the old name of `cog run`/,
    );
  });

  test("a usage mistake in a subcommand hints at its own help (`cog debug llb --help`), not its parent's", async () => {
    for (const [args, help] of [
      [['debug', 'llb'], 'cog debug llb'],
      [['debug', 'solve', '--example'], 'cog debug solve'],
      [['debug', 'plan', '--format', 'x'], 'cog debug plan'],
      [['cache', 'du', '--filter'], 'cog cache du'],
      [['cache', 'prune', '--bogus'], 'cog cache prune'],
      [['image', 'ls', '--bogus'], 'cog image ls'],
      [['image', 'prune', 'x'], 'cog image prune'],
      [['debug', '--format', 'x'], 'cog debug'],
      [['image', 'bogus'], 'cog image'],
    ] as const) {
      const out = await exec(cog, [...args], {
        env: { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent.sock' },
      });
      assert.equal(out.code, 1, args.join(' '));
      assert.match(out.stderr, new RegExp(`\nhint: run \`${help} --help\` for usage\n$`), args.join(' '));
    }
  });

  test('--help lists every planned command', async () => {
    const result = await exec(cog, ['--help']);
    assert.equal(result.code, 0);
    for (const command of plannedCommands) {
      assert.match(
        result.stdout,
        new RegExp(`cog ${command.name}( \\[\\w+\\]| <\\w+>)?\\s+${command.describe.slice(0, 20)}`),
      );
    }
    assert.ok(plannedCommands.length >= 11);
  });

  test('cog help COMMAND is COMMAND --help, as cobra (upstream) takes it', async () => {
    for (const words of [['build'], ['image', 'ls']]) {
      const viaHelp = await exec(cog, ['help', ...words]);
      const direct = await exec(cog, [...words, '--help']);
      assert.equal(viaHelp.code, 0, viaHelp.stderr);
      assert.match(viaHelp.stdout, new RegExp(`^cog ${words.join(' ')}\\b`));
      assert.equal(viaHelp.stdout, direct.stdout);
    }
  });

  test("upstream's global flags: --registry names the registry, --no-color and --debug are accepted", async () => {
    const hello = join(repoRoot, 'fixtures', 'models', 'hello');
    const env = { ...process.env, COG_REGISTRY_HOST: 'unused.example' };
    const plan = await exec(cog, ['--no-color', '--registry', 'registry.example:5000', 'debug'], {
      cwd: hello,
      env,
    });
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /^cog-base {2}registry\.example:5000\/cog-base:python3\.11 is tried first/);
    const after = await exec(cog, ['debug', '--registry=registry.example:5000'], { cwd: hello, env });
    assert.match(after.stdout, /^cog-base {2}registry\.example:5000\//, 'after the command too');

    // --debug: the error as always, then its stack trace
    const broken = await tempDir('cogts-debug-flag-');
    await writeFile(join(broken, 'cog.yaml'), 'build:\n  python_version: [3.11\n');
    const plainErr = await exec(cog, ['debug'], { cwd: broken });
    const debugErr = await exec(cog, ['--debug', 'debug'], { cwd: broken });
    assert.equal(plainErr.code, debugErr.code);
    assert.notEqual(debugErr.code, 0);
    assert.ok(debugErr.stderr.startsWith(plainErr.stderr), 'the same message and hint first');
    assert.match(debugErr.stderr.slice(plainErr.stderr.length), /^\w*Error: [^]*?\n\s+at /, 'a stack trace');
  });

  test("a switch's --name=VALUE is read as Go reads it: --use-cog-base-image=1 is on, =yes refused", async () => {
    const hello = join(repoRoot, 'fixtures', 'models', 'hello');
    const plan = (flag: string) => exec(cog, ['debug', flag], { cwd: hello });
    for (const on of ['--use-cog-base-image', '--use-cog-base-image=1', '--use-cog-base-image=TRUE']) {
      const result = await plan(on);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^cog-base {2}\S+ is required/m, on);
    }
    const off = await plan('--use-cog-base-image=0');
    assert.equal(off.code, 0, off.stderr);
    assert.doesNotMatch(off.stdout, /^cog-base /m);
    const refused = await plan('--use-cog-base-image=yes');
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^cog: error: --use-cog-base-image=yes: --use-cog-base-image is a switch, on or off$/m,
    );
    // --debug=1 asks for the stack trace as --debug does
    const broken = await tempDir('cogts-debug-value-');
    await writeFile(join(broken, 'cog.yaml'), 'build:\n  python_version: [3.11\n');
    const debugErr = await exec(cog, ['--debug=1', 'debug'], { cwd: broken });
    assert.match(debugErr.stderr, /\n\s+at /, 'a stack trace');
  });

  test('output into a pipe that closed ends cog with the status SIGPIPE gives (141), quietly', async () => {
    // the reader is gone before cog writes: Go's tools die of SIGPIPE there, and a push that could not
    // say what it did must not exit 0 (it stopped at its first write)
    const child = spawn(cog, ['debug'], {
      cwd: join(repoRoot, 'fixtures', 'models', 'hello'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    assert.equal(code, 141, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Error/, 'no stack trace');
  });

  test('output that cannot be written (a full disk) is said in one line, exit 1 (it was an uncaught stack)', async () => {
    const full = spawn(cog, ['debug'], {
      cwd: join(repoRoot, 'fixtures', 'models', 'hello'),
      stdio: ['ignore', openSync('/dev/full', 'w'), 'pipe'],
    });
    let stderr = '';
    full.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((done) => full.on('close', (c) => done(c)));
    assert.equal(code, 1, stderr);
    assert.equal(
      stderr,
      'cog: error: cannot write to standard output: ENOSPC: no space left on device, write\n',
    );
  });

  test('--debug detail lists the causes, innermost last', () => {
    const inner = new Error('connect ECONNREFUSED 127.0.0.1:1234');
    const outer = new CogError('cannot reach buildkitd', {
      cause: new Error('dial failed', { cause: inner }),
    });
    const detail = debugDetail(outer);
    assert.match(detail, /^CogError: cannot reach buildkitd\n\s+at /);
    assert.ok(
      detail.indexOf('caused by: Error: dial failed') <
        detail.indexOf('caused by: Error: connect ECONNREFUSED'),
    );
    assert.equal(debugDetail('plain text'), 'plain text\n');
  });

  test('a planned command that is not built yet fails with the issue that builds it', () => {
    // every planned command may be built by now: check the error such a command throws
    const err = new NotImplementedError('frob', 6);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /`cog frob` is not implemented yet/);
    assert.match(err.hint ?? '', /it is planned in issue #6/);
  });

  test('an unknown command fails and points at --help', async () => {
    const result = await exec(cog, ['frobnicate']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /unknown command "frobnicate"/);
    assert.match(result.stderr, /cog --help/);
  });

  test("flag mistakes name the option and the command's help; a missing IMAGE says so", async () => {
    const unknown = await exec(cog, ['inspect', '--frob', 'x', 'y']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^cog: error: unknown option --frob$/m);
    assert.match(unknown.stderr, /run `cog inspect --help` for usage/);
    const missing = await exec(cog, ['inspect']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^cog: error: `cog inspect` needs IMAGE$/m);
  });

  test('-i takes one value each: `cog run -i name=x IMAGE` runs IMAGE, not a project', async () => {
    const dir = await tempDir('cogts-run-image-');
    const result = await exec(cog, ['run', '-i', 'name=x', '127.0.0.1:9/x/y:v1'], {
      cwd: dir,
      env: { ...process.env, BUILDKIT_HOST: `unix://${join(dir, 'none.sock')}` },
    });
    assert.equal(result.code, 1);
    // it went for buildkitd to run the image; with IMAGE taken as an input it looked for cog.yaml
    assert.match(result.stderr, /cannot reach buildkitd/);
    assert.doesNotMatch(result.stderr, /cog\.yaml not found|Failed to parse input/);
  });

  test(
    'an XDG_STATE_HOME that is a file stops a private buildkitd with an error naming it (was an internal error)',
    { skip: existsSync('/run/buildkit/buildkitd.sock') && 'a daemon answers at the default socket' },
    async () => {
      const dir = await tempDir('cogts-state-file-');
      const stateFile = join(dir, 'state');
      await writeFile(stateFile, 'x');
      // found on PATH, never started: the state directory is claimed first
      const bin = join(dir, 'bin');
      await mkdir(bin);
      for (const program of ['buildkitd', 'rootlesskit'])
        await writeFile(join(bin, program), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        HOME: dir,
        XDG_STATE_HOME: stateFile,
        PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`,
      };
      delete env.BUILDKIT_HOST;
      delete env.XDG_RUNTIME_DIR;
      const result = await exec(cog, ['cache', 'du'], { env, cwd: dir });
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `^cog: error: cannot make buildkitd's state directory ${stateFile}/cog-ts/buildkitd(-rootless)? \\(in XDG_STATE_HOME=${stateFile}\\): ENOTDIR$`,
          'm',
        ),
      );
      assert.match(
        result.stderr,
        /^hint: point XDG_STATE_HOME at a directory you can write, or set BUILDKIT_HOST/m,
      );
    },
  );

  test('an image after `--` is the image (not left aside)', async () => {
    const home = await tempDir('cogts-dashes-');
    const result = await exec(cog, ['inspect', '--local', '--', 'nothing/here'], {
      env: { ...process.env, HOME: home, XDG_DATA_HOME: join(home, 'data') },
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no image named nothing\/here in the local image store/);
  });

  test('no arguments at all print the root help to stdout and succeed, as upstream does', async () => {
    const result = await exec(cog, []);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^cog <command> \[options\]/);
    assert.match(result.stdout, /cog build +Build an image/);
    assert.equal(result.stderr, '');
  });

  test('options but no command are still an error naming what is missing', async () => {
    const result = await exec(cog, ['--color']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Name a command/);
  });

  test('runs through the links npm makes to it, absolute and relative', async () => {
    const dir = await tempDir('cogts-bin-link-');
    await mkdir(join(dir, '.bin'));
    await symlink(cog, join(dir, 'cog-absolute'));
    // npm's node_modules/.bin/cog -> ../cog-ts/bin/cog, and a link to that link
    await symlink(relative(join(dir, '.bin'), cog), join(dir, '.bin', 'cog'));
    await symlink(join('.bin', 'cog'), join(dir, 'cog-twice'));
    for (const link of ['cog-absolute', join('.bin', 'cog'), 'cog-twice']) {
      const result = await exec(join(dir, link), ['--version']);
      assert.equal(result.code, 0, `${link}: ${result.stderr}`);
      assert.match(result.stdout, /\(cog-ts\)/);
    }
  });

  test("NODE_EXTRA_CA_CERTS stays out of Node's start-up; the processes cog starts get it back", async () => {
    const dir = await tempDir('cogts-bin-ca-');
    // readable, but a broken certificate: Node warns about it when it reads the file at start-up
    const file = join(dir, 'broken.pem');
    await writeFile(file, '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n');
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: file };
    delete env.COG_NODE_EXTRA_CA_CERTS;
    const plain = await exec(process.execPath, ['-e', '0'], { env });
    assert.match(plain.stderr, /Ignoring extra certs/, 'plain Node reads the file at start-up');
    const version = await exec(cog, ['--version'], { env });
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stderr, '', 'bin/cog started Node without it');

    // a credential helper cog runs sees the variable as the user set it
    await writeFile(
      join(dir, 'docker-credential-cogtsenv'),
      `#!/bin/sh\ncat > /dev/null\nprintf '%s' "$NODE_EXTRA_CA_CERTS" > "${dir}/seen.$1"\nexit 0\n`,
      { mode: 0o755 },
    );
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'cogtsenv' }));
    const logout = await exec(cog, ['logout', '127.0.0.1:5999'], {
      env: { ...env, DOCKER_CONFIG: dir, PATH: `${dir}${delimiter}${process.env.PATH ?? ''}` },
    });
    assert.equal(logout.code, 0, logout.stderr);
    assert.equal(await readFile(join(dir, 'seen.erase'), 'utf8'), file);
  });
});

describe('mistakes found before building: no buildkitd is reached', () => {
  const hello = join(repoRoot, 'fixtures', 'models', 'hello');
  /** cog with a BUILDKIT_HOST nothing listens on: reaching for buildkitd would say so */
  async function cogNoDaemon(cwd: string, args: string[]) {
    const home = await tempDir('cogts-nodaemon-');
    return exec(cog, args, {
      cwd,
      env: {
        ...process.env,
        HOME: home,
        XDG_DATA_HOME: join(home, 'data'),
        XDG_CACHE_HOME: join(home, 'cache'),
        COG_IMAGE_STORE: join(home, 'store'),
        BUILDKIT_HOST: `unix://${join(home, 'none.sock')}`,
      },
    });
  }
  const failsEarly = (result: { code: number; stderr: string }, message: RegExp, hint?: RegExp) => {
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, message);
    if (hint) assert.match(result.stderr, hint);
    assert.doesNotMatch(result.stderr, /buildkitd|cog: build \S+ on/, 'nothing was built');
  };

  test('a bad -t, or a bad image in cog.yaml, names where the name came from', async () => {
    failsEarly(
      await cogNoDaemon(hello, ['build', '-t', 'Bad Name']),
      /^cog: error: -t: invalid image reference "Bad Name": it has a space in it/m,
    );
    // NAME=VALUE where IMAGE goes: a missing flag, said so
    failsEarly(
      await cogNoDaemon(hello, ['run', 'name=x']),
      /^cog: error: invalid image name "name=x"$/m,
      /^hint: did you forget -i\?/m,
    );
    failsEarly(
      await cogNoDaemon(hello, ['serve', 'a=b']),
      /^cog: error: invalid image name "a=b"$/m,
      /^hint: cog serve takes an image name, or none$/m,
    );
    // -e with no name: refused before anything is built (a bare NAME passes the shell's value, as docker's)
    for (const command of ['run', 'exec'])
      failsEarly(
        await cogNoDaemon(hello, [command, '-e', '=x', ...(command === 'exec' ? ['true'] : [])]),
        /^cog: error: -e "=x" has no variable name$/m,
        /^hint: e\.g\. -e HF_TOKEN=\.\.\. or -e HF_TOKEN$/m,
      );
    // IMAGE of run, train and serve: named as a reference before anything runs (was an internal error)
    for (const command of ['run', 'train', 'serve'])
      failsEarly(
        await cogNoDaemon(hello, [command, 'Bad/Image']),
        /^cog: error: invalid image reference "Bad\/Image": /m,
        /^hint: write it as \[registry\/\]repository/m,
      );
    const project = await tempDir('cogts-bad-image-');
    await cp(hello, project, { recursive: true });
    await writeFile(
      join(project, 'cog.yaml'),
      `${await readFile(join(hello, 'cog.yaml'), 'utf8')}image: r.example/UPPER/x\n`,
    );
    failsEarly(
      await cogNoDaemon(project, ['build']),
      /'image' in cog\.yaml: invalid image reference "r\.example\/UPPER\/x"/,
    );
  });

  test("--gpus of serve and exec (upstream's serve has it) is refused but for none, naming cog run", async () => {
    for (const args of [
      ['serve', '--gpus', 'all'],
      // exec knows --gpus takes a value (its options are read from their declarations): 1 is not the command
      ['exec', '--gpus', '1', 'nvidia-smi'],
    ])
      failsEarly(
        await cogNoDaemon(hello, args),
        new RegExp(`^cog: error: --gpus ${args[2]}: cog ${args[0]} cannot attach GPUs$`, 'm'),
        new RegExp(`\`cog run --gpus ${args[2]}\``),
      );
  });

  test('an --output or --metadata-file in a missing directory, or naming a directory, is named', async () => {
    const dir = await tempDir('cogts-bad-output-');
    const missing = join(dir, 'missing', 'x.tar');
    failsEarly(
      await cogNoDaemon(hello, ['build', '-o', `type=oci,dest=${missing}`]),
      new RegExp(`--output "type=oci,dest=${missing}": the directory ${join(dir, 'missing')} does not exist`),
      /^hint: create it first/m,
    );
    failsEarly(
      await cogNoDaemon(hello, ['build', '-o', `type=docker,dest=${dir}/`]),
      new RegExp(`--output "type=docker,dest=${dir}/": ${dir}/ is a directory, not a file to write`),
      new RegExp(`^hint: name a file, e.g. --output type=docker,dest=${dir}/image\\.tar`, 'm'),
    );
    failsEarly(
      await cogNoDaemon(hello, ['build', '--metadata-file', join(dir, 'missing', 'meta.json')]),
      /--metadata-file: the directory .* does not exist/,
    );
  });

  test('two --output files, or an --output and --metadata-file, at the same path are refused, naming both', async () => {
    const dir = await tempDir('cogts-same-output-');
    await mkdir(join(dir, 'real'));
    await symlink('real', join(dir, 'link'));
    const same = join(dir, 'same.tar');
    failsEarly(
      await cogNoDaemon(hello, ['build', '-o', `type=oci,dest=${same}`, '-o', `type=docker,dest=${same}`]),
      new RegExp(
        `^cog: error: --output "type=oci,dest=${same}" and --output "type=docker,dest=${same}" both write ${same}: one would overwrite the other$`,
        'm',
      ),
      /^hint: give each output a file of its own$/m,
    );
    // compared once resolved: a relative path, a path through a linked directory
    failsEarly(
      await cogNoDaemon(dir, [
        'build',
        '-f',
        join(hello, 'cog.yaml'),
        '-o',
        'type=oci,dest=real/mm.tar',
        '--metadata-file',
        join(dir, 'link', 'mm.tar'),
      ]),
      new RegExp(
        `--output "type=oci,dest=real/mm\\.tar" and --metadata-file both write ${dir}/real/mm\\.tar`,
      ),
    );
    failsEarly(
      await cogNoDaemon(hello, ['build', '-o', 'type=oci,dest=-', '-o', 'type=tar,dest=-']),
      /--output "type=oci,dest=-" and --output "type=tar,dest=-" both write to stdout/,
    );
  });

  test('an oci/docker output name= is checked before the build, naming the flag (it failed after it)', async () => {
    failsEarly(
      await cogNoDaemon(hello, ['build', '-o', 'type=docker,dest=u.tar,name=Foo:Bar']),
      /^cog: error: --output "type=docker,dest=u\.tar,name=Foo:Bar": invalid image reference "Foo:Bar": the repository name must be lower-case$/m,
    );
  });

  test('-o dest=- is refused when standard output is a terminal, as buildx does', async () => {
    // `script` gives the command a terminal; BUILDKIT_HOST points at nothing, so only the check can answer
    const home = await tempDir('cogts-tty-');
    const command = `cd ${hello} && BUILDKIT_HOST=unix://${home}/none.sock HOME=${home} COG_IMAGE_STORE=${home}/store ${cog} build -o type=oci,dest=-; echo "exit=$?"`;
    const out = await exec('script', ['-qec', command, '/dev/null']);
    assert.match(
      out.stdout,
      /cog: error: --output "type=oci,dest=-": dest=- writes a tarball to standard output, which is a terminal/,
    );
    assert.match(out.stdout, /exit=1/);
    assert.doesNotMatch(out.stdout, /buildkitd/);
  });

  test('a local --cache-to or --cache-from naming a file (or a path under one) is refused naming the flag', async () => {
    const dir = await tempDir('cogts-cache-file-');
    const file = join(dir, 'file');
    await writeFile(file, 'not a cache');
    for (const dest of [file, join(file, 'sub')])
      failsEarly(
        await cogNoDaemon(hello, ['build', '--cache-to', `type=local,dest=${dest}`]),
        new RegExp(
          `^cog: error: --cache-to type=local,dest=${dest}: ${file} is a file, not a directory$`,
          'm',
        ),
        /^hint: name a directory for the cache/m,
      );
    const result = await cogNoDaemon(hello, ['build', '--cache-from', `type=local,src=${file}`]);
    failsEarly(
      result,
      new RegExp(
        `^cog: error: --cache-from type=local,src=${file}: ${file} is a file, not a cache directory$`,
        'm',
      ),
      /^hint: name the directory a --cache-to type=local,dest=DIR wrote \(an import only reads it\)$/m,
    );
    assert.doesNotMatch(result.stderr, /remove the directory/);
  });

  test('cog build -o DIR/ is refused naming the flag; cog run -o in a missing directory fails before building', async () => {
    const dir = await tempDir('cogts-o-dir-');
    failsEarly(
      await cogNoDaemon(hello, ['build', '-o', `${dir}/`]),
      new RegExp(
        `^cog: error: --output "${dir}/": cog build writes the image as a tarball, not into a directory$`,
        'm',
      ),
      new RegExp(`^hint: name the tarball: --output type=oci,dest=${dir}/image\\.tar`, 'm'),
    );
    failsEarly(
      await cogNoDaemon(hello, ['run', '-i', 'name=x', '-o', join(dir, 'missing', 'out.txt')]),
      new RegExp(
        `^cog: error: -o ${join(dir, 'missing', 'out.txt')}: the directory ${join(dir, 'missing')} does not exist$`,
        'm',
      ),
    );
  });

  test('-f naming a directory says so, and names the file to pass', async () => {
    const dir = await tempDir('cogts-f-dir-');
    await cp(hello, join(dir, 'hello'), { recursive: true });
    failsEarly(
      await cogNoDaemon(dir, ['build', '-f', 'hello']),
      /^cog: error: hello is a directory \(.*\), not a config file$/m,
      /^hint: pass the config file in it: -f hello\/cog\.yaml/m,
    );
  });

  test("a cog.yaml linking to nothing is named, not passed over for a parent directory's", async () => {
    const dir = await tempDir('cogts-f-link-');
    await cp(hello, join(dir, 'hello'), { recursive: true });
    await mkdir(join(dir, 'hello', 'child'));
    await symlink('nowhere.yaml', join(dir, 'hello', 'child', 'cog.yaml'));
    failsEarly(
      await cogNoDaemon(join(dir, 'hello', 'child'), ['build']),
      /^cog: error: cog\.yaml \(.*\/child\/cog\.yaml\) is a link to nowhere\.yaml, which cannot be read/m,
      /^hint: point the link at the config file/m,
    );
  });

  test('-f cog.yaml/ (a file name with a trailing slash) says to drop the slash', async () => {
    failsEarly(
      await cogNoDaemon(hello, ['build', '-f', 'cog.yaml/']),
      /^cog: error: -f cog\.yaml\/ ends in "\/", so it names a directory, and there is no directory cog\.yaml$/m,
      /^hint: drop the trailing "\/": -f cog\.yaml$/m,
    );
  });

  test('cog init with a directory named cog.yaml writes the other files and fails naming it', async () => {
    const dir = await tempDir('cogts-init-blocked-');
    await mkdir(join(dir, 'cog.yaml'));
    const result = await cogNoDaemon(dir, ['init']);
    failsEarly(
      result,
      /^cog: error: cog\.yaml is a directory, so cog init wrote no cog\.yaml$/m,
      /^hint: move cog\.yaml aside and run cog init again$/m,
    );
    assert.match(result.stdout, /^Wrote run\.py$/m);
    assert.match(await readFile(join(dir, 'run.py'), 'utf8'), /class Runner/);
  });

  test('cog train on a project without train names the field', async () => {
    failsEarly(
      await cogNoDaemon(hello, ['train']),
      /^cog: error: cog\.yaml has no 'train': cog train runs the training function it names$/m,
      /^hint: add it to cog\.yaml, e\.g\. `train: "train\.py:train"`/m,
    );
  });

  test("@cog.concurrent(max=N) on an async predict() is baked: cog debug shows the ENV and run.cog.config's concurrency", async () => {
    const dir = await tempDir('cogts-concurrent-');
    await writeFile(join(dir, 'cog.yaml'), 'build:\n  python_version: "3.11"\nrun: predict.py:Predictor\n');
    const predictor = (asyncDef: boolean) =>
      [
        'import asyncio',
        'import cog',
        'from cog import BasePredictor',
        'class Predictor(BasePredictor):',
        '    @cog.concurrent(max=4)',
        `    ${asyncDef ? 'async ' : ''}def predict(self, s: float = 2.0) -> str:`,
        '        return "done"',
        '',
      ].join('\n');
    await writeFile(join(dir, 'predict.py'), predictor(true));
    const text = await cogNoDaemon(dir, ['debug']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /^ {4}ENV {3}COG_PREDICT_TYPE_STUB=predict\.py:Predictor COG_MAX_CONCURRENCY=4$/m,
    );
    const json = await cogNoDaemon(dir, ['debug', '--format', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const { input } = JSON.parse(json.stdout) as { input: { labels: Record<string, string> } };
    assert.deepEqual(JSON.parse(input.labels['run.cog.config'] ?? '{}'), {
      build: { python_version: '3.11' },
      predict: 'predict.py:Predictor',
      concurrency: { max: 4 },
    });

    // max > 1 on a predict() that is not async: refused before building, naming the file and method
    await writeFile(join(dir, 'predict.py'), predictor(false));
    failsEarly(
      await cogNoDaemon(dir, ['build']),
      /^cog: error: predict\.py:6: Predictor\.predict\(\) is not async: @concurrent\(max=4\) requires an async run\(\) or predict\(\) method$/m,
      /^hint: declare it `async def predict\(\.\.\.\)`/m,
    );
  });

  test("cog.yaml's concurrency.max > 1 with a predict() that is not async is refused (it was baked with a warning)", async () => {
    const dir = await tempDir('cogts-concurrency-sync-');
    await cp(hello, dir, { recursive: true });
    const config = await readFile(join(dir, 'cog.yaml'), 'utf8');
    await writeFile(join(dir, 'cog.yaml'), `${config}\nconcurrency:\n  max: 2\n`);
    for (const args of [['debug'], ['build']])
      failsEarly(
        await cogNoDaemon(dir, args),
        /^cog: error: cog\.yaml: concurrency\.max is 2, which requires an async run\(\) or predict\(\) method, but Predictor\.predict\(\) \(predict\.py:8\) is not async$/m,
        /^hint: declare it `async def predict\(\.\.\.\)`, or remove concurrency from cog\.yaml/m,
      );
  });

  test('cog run and cog serve on a project without run name the field', async () => {
    const dir = await tempDir('cogts-no-run-');
    await cp(hello, dir, { recursive: true });
    const config = await readFile(join(dir, 'cog.yaml'), 'utf8');
    await writeFile(join(dir, 'cog.yaml'), config.replace(/^(run|predict):.*$/m, ''));
    for (const [args, says] of [
      [['run'], 'cog run runs'],
      [['serve'], 'cog serve serves'],
    ] as const)
      failsEarly(
        await cogNoDaemon(dir, [...args]),
        new RegExp(`^cog: error: cog\\.yaml has no 'run': ${says} the predictor it names$`, 'm'),
        /^hint: add it to cog\.yaml, e\.g\. `run: "run\.py:Runner"`/m,
      );
  });
});

test('an option that takes a value, given none, is a usage error naming it (it was an internal error with a stack)', async () => {
  for (const [args, form, help] of [
    [
      ['build', '-o'],
      '-o needs a value (type=oci|docker|tar,dest=FILE or type=image,name=REF[,push=true])',
      'cog build',
    ],
    [['build', '--secret'], '--secret needs a value (id=NAME,src=FILE or id=NAME,env=VAR)', 'cog build'],
    [['run', '-i'], '-i needs a value (name=value)', 'cog run'],
    [
      ['cache', 'du', '--filter'],
      '--filter needs a value (a record filter, e.g. type==exec.cachemount)',
      'cog cache du',
    ],
    [['exec', '-p'], '-p needs a value (PORT, HOST:PORT or [IPV6]:PORT)', 'cog exec'],
    [['debug', 'solve', '-o'], '-o needs a value (an exporter, e.g. type=image,name=REF)', 'cog debug solve'],
  ] as const) {
    const out = await exec(cog, [...args], {
      env: { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent.sock' },
    });
    assert.equal(out.code, 1, out.stderr);
    assert.equal(out.stderr, `cog: error: ${form}\nhint: run \`${help} --help\` for usage\n`);
  }
});

test('-f, --progress and --platform given no value are refused (they were read as empty: -f built cog.yaml)', async () => {
  for (const [args, expected, help] of [
    [['build', '-f'], '-f needs a value (a config file, e.g. cog.yaml)', 'cog build'],
    [
      ['build', '-f', '--progress', 'quiet'],
      '-f needs a value (a config file, e.g. cog.yaml); "--progress" looks like a flag',
      'cog build',
    ],
    [
      ['predict', '--progress', '-i', 'a=1'],
      '--progress needs a value (auto, tty, plain, rawjson or quiet); "-i" looks like a flag',
      'cog predict',
    ],
    [['build', '--platform'], '--platform needs a value (a platform, e.g. linux/amd64)', 'cog build'],
    [['debug', 'plan', '-f'], '-f needs a value (a config file, e.g. cog.yaml)', 'cog debug plan'],
  ] as const) {
    const out = await exec(cog, [...args], {
      env: { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent.sock' },
    });
    assert.equal(out.code, 1, out.stderr);
    assert.equal(out.stderr, `cog: error: ${expected}\nhint: run \`${help} --help\` for usage\n`);
  }
});

test('every option that takes one string value, given none or followed by an option, is refused naming what it wants (it was read as empty)', async () => {
  const dir = await tempDir('cogts-valueless-');
  // [arguments, the option as written, what it wants, the command whose help the hint names]
  const cases: [string[], string, string, string][] = [
    [['build', '--dockerfile'], '--dockerfile', 'a Dockerfile', 'cog build'],
    [['build', '--metadata-file', '--push'], '--metadata-file', 'a file to write', 'cog build'],
    [['build', '--openapi-schema'], '--openapi-schema', 'a schema file', 'cog build'],
    [
      ['build', '--use-cuda-base-image', '--push'],
      '--use-cuda-base-image',
      'auto, true or false',
      'cog build',
    ],
    [['push', '--tlscacert'], '--tlscacert', 'a CA certificate file', 'cog push'],
    [['build', '--tlscert'], '--tlscert', 'a certificate file', 'cog build'],
    [['build', '--tlskey'], '--tlskey', 'a key file', 'cog build'],
    [['cache', 'du', '--tlsservername'], '--tlsservername', 'a server name', 'cog cache du'],
    [['doctor', '--tlsdir'], '--tlsdir', 'a directory', 'cog doctor'],
    [['login', '--username'], '--username', 'a username', 'cog login'],
    [['login', '-u', '--password-stdin'], '-u', 'a username', 'cog login'],
    [['login', '-u', 'me', '-p'], '-p', 'a password or token', 'cog login'],
    [['run', '--json'], '--json', 'a JSON object, @file or -', 'cog run'],
    [['run', '-o', '-i', 'a=1'], '-o', 'a file, or DIR/', 'cog run'],
    [['train', '--gpus'], '--gpus', 'all, a count, device=0,1 or none', 'cog train'],
    [['serve', '--host'], '--host', 'an address to bind', 'cog serve'],
    [['serve', '--upload-url', '--progress', 'quiet'], '--upload-url', 'a URL', 'cog serve'],
    [['cache', 'prune', '--keep-duration'], '--keep-duration', 'a duration, e.g. 24h', 'cog cache prune'],
    [['cache', 'prune', '--keep-storage', '-f'], '--keep-storage', 'a size, e.g. 10GB', 'cog cache prune'],
    [['debug', 'solve', '--example'], '--example', 'a graph of the LLB corpus', 'cog debug solve'],
    [['debug', 'solve', '--metadata-file'], '--metadata-file', 'a file to write', 'cog debug solve'],
    [['debug', 'llb', '--example', 'x', '--http-url'], '--http-url', 'a URL', 'cog debug llb'],
    [
      ['debug', 'plan', '--use-cuda-base-image'],
      '--use-cuda-base-image',
      'auto, true or false',
      'cog debug plan',
    ],
    [['build', '--registry'], '--registry', 'a registry host', 'cog build'],
    [['debug', '--format'], '--format', 'text, json or llb', 'cog debug'],
    [['debug', 'llb', '--format'], '--format', 'definition or json', 'cog debug llb'],
  ];
  for (const [args, form, what, help] of cases) {
    const out = await exec(cog, args, {
      cwd: dir,
      env: { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent.sock' },
    });
    const next = args[args.indexOf(form) + 1];
    const dashed = next === undefined ? '' : `; ${JSON.stringify(next)} looks like a flag`;
    assert.equal(
      out.stderr,
      `cog: error: ${form} needs a value (${what})${dashed}\nhint: run \`${help} --help\` for usage\n`,
      args.join(' '),
    );
    assert.equal(out.code, 1, args.join(' '));
  }
});

test("a value outside an option's choices is refused naming the option, the value and the choices", async () => {
  const hello = join(repoRoot, 'fixtures', 'models', 'hello');
  const out = await exec(cog, ['debug', '--format', 'yaml'], {
    cwd: hello,
    env: { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent.sock' },
  });
  assert.equal(
    out.stderr,
    'cog: error: --format "yaml" is not one of text, json, llb\nhint: run `cog debug --help` for usage\n',
  );
  assert.equal(out.code, 1);
});

test('an empty value written as one still reaches the command, and - is a value (--json - reads stdin)', async () => {
  const hello = join(repoRoot, 'fixtures', 'models', 'hello');
  const env = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent.sock' };
  // `--dockerfile=` and `--dockerfile ''` are empty on purpose: the command's own check answers
  for (const args of [
    ['build', '--dockerfile='],
    ['build', '--dockerfile', ''],
  ]) {
    const out = await exec(cog, args, { cwd: hello, env });
    assert.equal(
      out.stderr,
      'cog: error: --dockerfile needs the path of a Dockerfile\nhint: e.g. --dockerfile Dockerfile\n',
    );
  }
  // `--json -` takes the JSON from stdin (it was read as an empty --json, and - as the image)
  const stdin = await exec(cog, ['run', '--json', '-'], { cwd: hello, env, input: '{"text": ' });
  assert.match(stdin.stderr, /^cog: error: Failed to parse JSON from standard input/);
});

test('every command that builds the project takes --secret; with IMAGE (nothing to build) it and -f are refused', async () => {
  const env = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent.sock' };
  for (const command of ['build', 'push', 'run', 'predict', 'train', 'serve', 'exec']) {
    const help = await exec(cog, [command, '--help'], { env });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^\s+--secret\s+id=NAME,src=FILE or id=NAME,env=VAR/m, `cog ${command} --help`);
  }
  for (const command of ['run', 'predict', 'train', 'serve']) {
    const out = await exec(cog, [command, 'h2-some-image:latest', '--secret', 'id=token,src=token.txt'], {
      env,
    });
    assert.equal(out.code, 1, out.stderr);
    const shown = command === 'predict' ? 'run' : command;
    assert.match(
      out.stderr,
      new RegExp(
        `^cog: error: --secret: \`cog ${shown} IMAGE\` runs an image that is built already\nhint: drop --secret, or leave IMAGE out to build the project with it\n$`,
        'm',
      ),
    );
    // -f names a config file IMAGE never reads (it was ignored); the default -f cog.yaml passes on
    const file = await exec(cog, [command, 'h2-some-image:latest', '-f', 'other.yaml'], { env });
    assert.equal(file.code, 1, file.stderr);
    assert.equal(
      file.stderr.replace(/^cog: warning: "cog predict" is deprecated.*\n/, ''),
      `cog: error: -f other.yaml: \`cog ${shown} IMAGE\` runs an image and reads no config file\n` +
        'hint: drop -f, or leave IMAGE out to build the project from that file\n',
    );
    for (const same of ['cog.yaml', './cog.yaml']) {
      const plain = await exec(cog, [command, 'h2-some-image:latest', '-f', same], { env });
      assert.doesNotMatch(plain.stderr, /reads no config file/);
    }
  }
});

test('cog build -t -bad says -t needs an image name and "-bad" looks like a flag (it named each letter)', async () => {
  for (const [args, expected] of [
    [['build', '-t', '-bad'], '-t needs a value (an image name); "-bad" looks like a flag'],
    [['build', '-t'], '-t needs a value (an image name)'],
  ] as const) {
    const out = await exec(cog, [...args], {
      env: { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent.sock' },
    });
    assert.equal(out.code, 1, out.stderr);
    assert.equal(out.stderr, `cog: error: ${expected}\nhint: run \`cog build --help\` for usage\n`);
  }
});

test('an option that takes one value, given twice, is refused naming it and both values (it crashed on a list)', async () => {
  const dir = await tempDir('cogts-repeated-');
  await writeFile(
    join(dir, 'cog.yaml'),
    'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n',
  );
  await writeFile(join(dir, 'predict.py'), 'from cog import BasePredictor\n');
  for (const [args, expected, help] of [
    [['build', '-t', 'a', '-t', 'b'], '-t was given 2 times ("a", "b"): it takes one value', 'cog build'],
    [
      ['build', '--progress', 'plain', '--progress', 'quiet'],
      '--progress was given 2 times ("plain", "quiet"): it takes one value',
      'cog build',
    ],
    [
      ['push', '-f', 'cog.yaml', '--file', 'x.yaml'],
      '-f was given 2 times ("cog.yaml", "x.yaml"): it takes one value',
      'cog push',
    ],
  ] as const) {
    const out = await exec(cog, [...args], {
      cwd: dir,
      env: { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent.sock', COG_IMAGE_STORE: join(dir, 'store') },
    });
    assert.equal(out.code, 1, out.stderr);
    assert.equal(
      out.stderr,
      `cog: error: ${expected}\nhint: give ${expected.split(' ')[0]} once (\`${help} --help\` lists the options)\n`,
    );
  }
});

test('inspect --local NAME@DIGEST not in the store hints at NAME:TAG@DIGEST, not at `cog build -t NAME@DIGEST` (refused)', async () => {
  const store = join(await tempDir('cogts-inspect-store-'), 'store');
  const ref = `r.example/a/b@sha256:${'a'.repeat(64)}`;
  const out = await exec(cog, ['inspect', '--local', ref], {
    env: { ...process.env, COG_IMAGE_STORE: store },
  });
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, /^hint: the local store finds an image by NAME:TAG@DIGEST/m);
  assert.doesNotMatch(out.stderr, /cog build -t/);
});

test('Ctrl-C while waiting for a buildkitd that does not answer ends at once (it waited out the 5 s limit)', async () => {
  // accepts the connection and says nothing: the gRPC channel waits for the HTTP/2 preface
  const silent = createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as AddressInfo).port;
  try {
    const child = spawn(cog, ['build', '--progress', 'plain'], {
      cwd: join(repoRoot, 'fixtures', 'models', 'hello'),
      env: { ...process.env, BUILDKIT_HOST: `tcp://127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // once the project is read (the config's warning or the build's own lines), cog is connecting
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const interrupted = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    assert.ok(
      Date.now() - interrupted < 2500,
      `ended ${Date.now() - interrupted} ms after Ctrl-C:\n${stderr}`,
    );
    assert.equal(code, 130, stderr);
    assert.match(stderr, /^cog: error: interrupted \(SIGINT\)/m);
  } finally {
    silent.close();
  }
});

test('cog exec -p 8080:9999 is refused: the port cannot be remapped (it was read as host "8080", port 9999)', async () => {
  const env = { ...process.env, BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock' };
  const cwd = join(repoRoot, 'fixtures', 'models', 'hello');
  const out = await exec(cog, ['exec', '-p', '8080:9999', 'true'], { cwd, env });
  assert.equal(out.code, 1, out.stderr);
  assert.equal(
    out.stderr,
    `cog: error: -p "8080:9999": ports cannot be remapped (host port 8080 to container port 9999): the container shares the host's network, so it is reached on the port it listens on\n` +
      'hint: use the same port on both sides: -p 9999 (or -p ADDRESS:9999 with an address of this host)\n',
  );
  // an address for HOST is taken: the command goes on, to the daemon it cannot reach
  for (const publish of ['127.0.0.1:9999', '[::1]:9999', '9999:9999']) {
    const ok = await exec(cog, ['exec', '-p', publish, 'true'], { cwd, env });
    assert.equal(ok.code, 1, ok.stderr);
    assert.doesNotMatch(ok.stderr, /-p "/, publish);
    assert.match(ok.stderr, /nonexistent\/buildkitd\.sock/, publish);
  }
});
