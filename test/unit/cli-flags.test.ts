// Parsing of CLI flag values (--output), the output files' checks, and the default daemon addresses.
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultBuildkitHosts, findOnPath } from '../../src/buildkit/daemon.js';
import { outputPushesImage, parseOutputFlag, splitCsv } from '../../src/cli/output-flag.js';
import { checkOutputFile, refuseBareOutput } from '../../src/cli/output-files.js';
import { CogError } from '../../src/errors.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

const tempDir = tempDirsRemovedAfterTests();

test('--output parses image, tarball and local outputs', () => {
  assert.deepEqual(parseOutputFlag('type=image,name=r/x:1,push=true'), {
    type: 'image',
    dest: undefined,
    attrs: { name: 'r/x:1', push: 'true' },
  });
  assert.deepEqual(parseOutputFlag('type=oci,dest=out.tar,name=a'), {
    type: 'oci',
    dest: 'out.tar',
    attrs: { name: 'a' },
  });
  assert.deepEqual(parseOutputFlag('type=local,dest=dir'), { type: 'local', dest: 'dir', attrs: {} });
  assert.deepEqual(parseOutputFlag('type=tar,dest=-').dest, '-');
});

test('--output keeps quoted commas inside one value', () => {
  assert.deepEqual(splitCsv('type=image,"name=a,b",push=true'), ['type=image', 'name=a,b', 'push=true']);
  assert.throws(() => splitCsv('name="a'), /unbalanced quote/);
});

test('--output errors name the flag and what is missing', () => {
  const cases: [string, RegExp][] = [
    ['dest=x', /type must be one of/],
    ['type=zip,dest=x', /type must be one of image, oci, docker, tar, local/],
    ['type=image', /type=image needs name=REF/],
    ['type=image,name=a,dest=b', /takes name=, not dest=/],
    ['type=oci', /type=oci needs dest=/],
    ['type=local,dest=-', /needs a directory, not stdout/],
    ['type=local,junk', /"junk" is not key=value/],
    // it crashed after the build (exit 70): the exporter's tar=false needs a content store cog does not serve
    [
      'type=oci,dest=dir,tar=false',
      /tar=false \(an image layout directory\) is not supported; type=oci writes a tarball/,
    ],
    ['type=docker,dest=dir,tar=0', /tar=0 \(an image layout directory\) is not supported/],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => parseOutputFlag(value),
      (err: unknown) =>
        err instanceof CogError && message.test(err.message) && err.message.includes('--output'),
      value,
    );
  }
});

test('an --output that pushes a named image is a destination for --push; one that does not is none', () => {
  assert.equal(outputPushesImage(['type=image,name=r.io/x:1,push=true']), true);
  assert.equal(outputPushesImage(['type=oci,dest=a.tar', 'type=image,name=r.io/x,push=1']), true);
  assert.equal(outputPushesImage(['type=image,name=r.io/x']), false);
  assert.equal(outputPushesImage(['type=image,name=r.io/x,push=false']), false);
  assert.equal(outputPushesImage(['type=oci,dest=a.tar,push=true']), false);
  // a value that does not parse is no destination (its own error comes later)
  assert.equal(outputPushesImage(['type=image,push=true']), false);
  assert.equal(outputPushesImage([]), false);
});

test('an output file is checked before the build: its directory must exist, and it must not be a directory', async () => {
  const dir = await tempDir('cogts-output-file-');
  await mkdir(join(dir, 'out'));
  await writeFile(join(dir, 'plain-file'), '');
  const file = (path: string) => ({
    flag: `--output "type=oci,dest=${path}"`,
    path,
    example: (f: string) => `--output type=oci,dest=${f}`,
    suggestedName: 'image.tar',
  });
  // a new file, or one to replace, in a directory that exists; relative paths from cwd
  await checkOutputFile(file('image.tar'), dir);
  await checkOutputFile(file(join(dir, 'out', 'image.tar')), '/');
  await writeFile(join(dir, 'out', 'old.tar'), '');
  await checkOutputFile(file('out/old.tar'), dir);
  const cases: [string, RegExp, RegExp][] = [
    ['out', /: out is a directory, not a file to write$/, /--output type=oci,dest=out\/image\.tar/],
    ['out/', /: out\/ is a directory, not a file to write$/, /dest=out\/image\.tar/],
    ['new-dir/', /: new-dir\/ is a directory, not a file to write$/, /dest=new-dir\/image\.tar/],
    ['missing/x.tar', /: the directory .*\/missing does not exist$/, /mkdir -p .*\/missing/],
    [
      'plain-file/x.tar',
      /: .*\/plain-file is a file, not a directory$/,
      /choose another path.*dest=image\.tar/,
    ],
    // not "does not exist, mkdir -p": mkdir would fail on the file in the way
    ['plain-file/sub/x.tar', /: .*\/plain-file is a file, not a directory$/, /choose another path/],
    ['/proc/x.tar', /: cannot write files in \/proc \(E[A-Z]+\)$/, /a directory you can write to/],
    // a pseudo file system that takes no new files (root may "access" it): found before the build
    ['/sys/x.tar', /: cannot write files in \/sys \(E[A-Z]+\)$/, /a directory you can write to/],
  ];
  for (const [path, message, hint] of cases) {
    await assert.rejects(
      checkOutputFile(file(path), dir),
      (err: unknown) =>
        err instanceof CogError &&
        err.message.startsWith(`--output "type=oci,dest=${path}": `) &&
        message.test(err.message) &&
        hint.test(err.hint ?? ''),
      path,
    );
  }
  assert.deepEqual(await readdir(dir), ['out', 'plain-file'], 'no write-check file is left');
});

test('cog build -o PATH (a directory export to buildx) is refused, naming the tarball flag to use', () => {
  const cases: [string, string][] = [
    ['out/', 'out/image.tar'],
    ['out', 'out/image.tar'],
    ['image.tar', 'image.tar'],
    ['-', '-'],
  ];
  for (const [value, file] of cases) {
    assert.throws(
      () => refuseBareOutput(value),
      (err: unknown) =>
        err instanceof CogError &&
        err.message ===
          `--output "${value}": cog build writes the image as a tarball, not into a directory` &&
        (err.hint ?? '').startsWith(`name the tarball: --output type=oci,dest=${file} `),
      value,
    );
  }
  refuseBareOutput('type=oci,dest=out/image.tar');
});

test('default daemon addresses: rootless socket first for non-root users', () => {
  assert.deepEqual(defaultBuildkitHosts({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000), [
    'unix:///run/user/1000/buildkit/buildkitd.sock',
    'unix:///run/buildkit/buildkitd.sock',
  ]);
  assert.deepEqual(defaultBuildkitHosts({ XDG_RUNTIME_DIR: '/run/user/0' }, 0), [
    'unix:///run/buildkit/buildkitd.sock',
  ]);
});

test('findOnPath finds executables only', async () => {
  assert.equal(await findOnPath('sh', '/nonexistent:/bin'), '/bin/sh');
  assert.equal(await findOnPath('no-such-program-cogts', '/bin:/usr/bin'), undefined);
  assert.equal(await findOnPath('sh', ''), undefined);
});
