// .dockerignore patterns (moby/patternmatcher semantics) and the context walk filter (fsutil semantics).
// Expected values are the behaviour of those Go packages, case by case.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { transferRequest, walkContext } from '../../src/buildkit/filesync.js';
import {
  ContextFilter,
  PatternError,
  PatternMatcher,
  cleanPath,
  contextFilter,
  parseDockerignore,
  readDockerignore,
  readDockerignoreSync,
  resolveFollowPaths,
  withoutCommaSpace,
} from '../../src/buildkit/patterns.js';
import { toGoMode, goMode } from '../../src/buildkit/go-mode.js';
import { CogError } from '../../src/errors.js';

const temps: string[] = [];
after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

/** Creates a tree from lines `dir PATH`, `file PATH [DATA]`, `symlink PATH TARGET`, `hardlink PATH TARGET`. */
async function tree(lines: readonly string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cogts-patterns-'));
  temps.push(dir);
  for (const line of lines) {
    const [kind, path, arg] = line.split(' ') as [string, string, string | undefined];
    const abs = join(dir, path);
    await mkdir(dirname(abs), { recursive: true });
    if (kind === 'dir') await mkdir(abs, { recursive: true });
    else if (kind === 'file') await writeFile(abs, arg ?? '');
    else if (kind === 'symlink') await symlink(arg ?? '', abs);
    else if (kind === 'hardlink') await link(join(dir, arg ?? ''), abs);
  }
  return dir;
}

/** The walk as lines like fsutil's tests print them: `dir a`, `file a/b`, `symlink:T a/l`, `file x >first`. */
async function walked(
  dir: string,
  options: { include?: string[]; exclude?: string[]; followPaths?: string[] } = {},
): Promise<string[]> {
  const filter = await contextFilter(dir, options);
  const out: string[] = [];
  for await (const { path, stat } of walkContext(dir, filter)) {
    const mode = stat.mode ?? 0;
    let kind = 'file';
    if (mode & 0x80000000) kind = 'dir';
    else if (mode & 0x08000000) kind = `symlink:${stat.linkname ?? ''}`;
    else if (stat.linkname) kind = `file >${stat.linkname}`;
    out.push(kind.startsWith('file >') ? `file ${path} ${kind.slice(5)}` : `${kind} ${path}`);
  }
  return out;
}

describe('cleanPath (Go filepath.Clean)', () => {
  test('cleans like Go', () => {
    const cases: [string, string][] = [
      ['', '.'],
      ['.', '.'],
      ['./a', 'a'],
      ['a//b/', 'a/b'],
      ['a/./b/../c', 'a/c'],
      ['../a', '../a'],
      ['a/../..', '..'],
      ['/', '/'],
      ['/../a', '/a'],
      ['//a/b/', '/a/b'],
      ['!./a', '!./a'],
    ];
    for (const [input, want] of cases) assert.equal(cleanPath(input), want, input);
  });
});

describe('PatternMatcher (moby/patternmatcher)', () => {
  // [pattern, path, matches] — the pattern or a parent directory of the path
  const cases: [string, string, boolean][] = [
    ['**', 'file', true],
    ['**/', 'file', true],
    ['**', 'dir/file', true],
    ['**/**', 'dir/file', true],
    ['dir/**', 'dir/file', true],
    ['dir/**', 'dir/dir2/file', true],
    ['**/dir', 'dir', true],
    ['**/dir', 'dir/file', true],
    ['**/dir2/*', 'dir/dir2/file', true],
    ['**/dir2/**', 'dir/dir2/dir3/file', true],
    ['**file', 'file', true],
    ['**file', 'dir/file', true],
    ['**file', 'dir/xfile', true],
    ['**/file', 'dir/dir/file', true],
    ['**/file*', 'dir/dir/file.txt', true],
    ['**/file*.txt', 'dir/dir/file.txt', true],
    ['**/**/*.txt', 'dir/dir/file.txt', true],
    ['**/**/*.txt2', 'dir/dir/file.txt', false],
    ['**/*.txt', 'file.txt', true],
    ['a**/*.txt', 'a/dir/dir/file.txt', true],
    ['a/*.txt', 'a/dir/file.txt', false],
    ['a/*.txt', 'a/file.txt', true],
    ['a/*.txt**', 'a/file.txt', true],
    ['a[b-d]e', 'ae', false],
    ['a[b-d]e', 'ace', true],
    ['a[b-d]e', 'aae', false],
    ['a[^b-d]e', 'aze', true],
    ['.*', '.foo', true],
    ['.*', 'foo', false],
    ['abc.def', 'abcdef', false],
    ['abc.def', 'abc.def', true],
    ['abc?def', 'abcZdef', true],
    ['abc?def', 'abcdef', false],
    ['a\\\\', 'a\\', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'ab', false],
    ['**/foo/bar', 'foo/bar', true],
    ['**/foo/bar', 'dir/dir2/foo/bar', true],
    ['abc/**', 'abc', false],
    ['abc/**', 'abc/def/ghi', true],
    ['**/.foo', '.foo', true],
    ['**/.foo', 'bar.foo', false],
    ['a(b)c/def', 'a(b)c/def', true],
    ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
    ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
    ['*', 'abc', true],
    ['a*', 'ab/c', true], // through the parent `ab`
    ['a*/b', 'abc/b', true],
    ['a*/b', 'a/c/b', false],
    ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
    ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
    ['a*b?c*x', 'abxbbxdbxebxczzx', true],
    ['a*b?c*x', 'abxbbxdbxebxczzy', false],
    ['ab[^c]', 'abc', false],
    ['ab[^e-g]', 'abc', true],
    ['a?b', 'a☺b', true],
    ['a???b', 'a☺b', false],
    ['[a-ζ]*', 'α', true],
    ['*[a-ζ]', 'A', false],
    ['a?b', 'a/b', false],
    ['a*b', 'a/b', false],
    ['[\\]a]', ']', true],
    ['[\\-]', '-', true],
    ['[x\\-]', '-', true],
    ['[x\\-]', 'z', false],
    ['*x', 'xxx', true],
    // cleaned: leading ./, doubled and trailing slashes
    ['./a/b', 'a/b', true],
    ['a//b/', 'a/b/c', true],
    // a directory pattern excludes the contents
    ['node_modules', 'node_modules/x/y.js', true],
    ['node_modules', 'src/node_modules/x', false],
    ['/abs', 'abs', false], // a leading / is only dropped by .dockerignore parsing
  ];
  for (const [pattern, path, want] of cases) {
    test(`${JSON.stringify(pattern)} ${want ? 'matches' : 'does not match'} ${JSON.stringify(path)}`, () => {
      const m = new PatternMatcher([pattern]);
      assert.equal(m.matches(path), want);
      // the walk's way (parent results handed down) agrees
      const parts = path.split('/');
      let info: readonly boolean[] | undefined;
      let result = false;
      for (let i = 1; i <= parts.length; i++) {
        const r = m.matchesUsingParent(parts.slice(0, i).join('/'), info ?? []);
        info = r.info;
        result = r.matched;
      }
      assert.equal(result, want);
    });
  }

  test('exceptions: the last matching pattern wins', () => {
    const cases: [string[], string, boolean][] = [
      [['**', '!util/docker/web'], 'util/docker/web/foo', false],
      [['**', '!util/docker/web', 'util/docker/web/foo'], 'util/docker/web/foo', true],
      [['**', '!dist/*.whl'], 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', false],
      [['*.md', '!README.md'], 'README.md', false],
      [['*.md', '!README.md'], 'CHANGES.md', true],
      [['*.md', '!README.md', 'README.md'], 'README.md', true],
      [['docs', '!docs/keep.txt'], 'docs/keep.txt', false],
      [['docs', '!docs/keep.txt'], 'docs/other.txt', true],
      [['  spaced  ', ''], 'spaced', true],
    ];
    for (const [patterns, path, want] of cases) {
      assert.equal(new PatternMatcher(patterns).matches(path), want, `${patterns.join(' ')} ~ ${path}`);
    }
    assert.equal(new PatternMatcher(['a', '!b']).hasExclusions, true);
    assert.equal(new PatternMatcher(['a', 'b']).hasExclusions, false);
  });

  test('malformed patterns are rejected', () => {
    for (const bad of ['!', '[]a]', '[-]', '[x-]', '[-x]', '\\', '[a-b-c]', '[', '[^', '[^bc', 'a[']) {
      assert.throws(() => new PatternMatcher([bad]), PatternError, bad);
    }
  });
});

describe('parseDockerignore (moby/patternmatcher ignorefile)', () => {
  test('comments, blank lines, trimming, leading slashes and exceptions', () => {
    const text =
      '\uFEFFtest1\n/test2\n/a/file/here\r\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! \n  ./dot/../x//y/  \n  # not a comment\n';
    assert.deepEqual(parseDockerignore(text), [
      'test1',
      'test2',
      'a/file/here',
      'lastfile',
      '!inverted/abs/path',
      '!',
      '!',
      'x/y',
      '# not a comment',
    ]);
  });

  test('readDockerignore: a missing file is no patterns', async () => {
    const dir = await tree(['file .dockerignore', 'file other']);
    await writeFile(join(dir, '.dockerignore'), '*.pyc\n!keep.pyc\n');
    assert.deepEqual(await readDockerignore(dir), ['*.pyc', '!keep.pyc']);
    assert.deepEqual(await readDockerignore(join(dir, 'nonexistent')), []);
  });

  test('readDockerignore: a pattern the builder refuses is named with its line; a directory is named', async () => {
    const dir = await tree(['file other']);
    await writeFile(join(dir, '.dockerignore'), '# fine\n*.pyc\nfoo[\n');
    for (const read of [readDockerignore, readDockerignoreSync]) {
      await assert.rejects(
        async () => read(dir),
        (err: unknown) =>
          err instanceof CogError &&
          err.message === '.dockerignore:3: invalid pattern "foo[": syntax error in pattern' &&
          /fix or remove that line of \.dockerignore/.test(err.hint ?? ''),
      );
    }
    await writeFile(join(dir, '.dockerignore'), 'a\n!\n');
    await assert.rejects(
      readDockerignore(dir),
      (err: unknown) =>
        err instanceof CogError &&
        /^\.dockerignore:2: invalid pattern "!"/.test(err.message) &&
        /a ! is followed by the pattern it makes an exception for/.test(err.hint ?? ''),
    );
    // a FIFO: named, not read (the read blocked for ever)
    await rm(join(dir, '.dockerignore'));
    execFileSync('mkfifo', [join(dir, '.dockerignore')]);
    assert.throws(
      () => readDockerignoreSync(dir),
      (err: unknown) => err instanceof CogError && err.message === '.dockerignore is not a regular file',
    );
    await rm(join(dir, '.dockerignore'));
    await mkdir(join(dir, '.dockerignore'));
    await assert.rejects(
      readDockerignore(dir),
      (err: unknown) => err instanceof CogError && err.message === '.dockerignore is a directory',
    );
  });

  test('withoutCommaSpace: no ", " is left, and every name matches as before', () => {
    const names = [
      'x, y.txt',
      'x,  y.txt',
      'x',
      'y.txt',
      'x,y.txt',
      'a, b',
      'a ,b',
      ' ',
      ',',
      'ab',
      'a\\, b',
    ];
    for (const pattern of ['x, y.txt', 'x,  y.txt', '[a, ]*', 'a\\, b', '!x, y*', '*, *', 'plain/*.py']) {
      const safe = withoutCommaSpace(pattern);
      assert.ok(!safe.includes(', '), `${pattern} -> ${safe}`);
      const before = new PatternMatcher([pattern]);
      const after = new PatternMatcher([safe]);
      for (const name of names)
        assert.equal(
          after.matches(name),
          before.matches(name),
          `${pattern} -> ${safe} on ${JSON.stringify(name)}`,
        );
    }
    assert.equal(withoutCommaSpace('x, y.txt'), 'x,[ ]y.txt');
    assert.equal(withoutCommaSpace('[a, b]'), '[a,\\ b]');
    // in a class the space may start a range: it still does, escaped
    const range = '[+, -x]y';
    for (const name of ['"y', '#y', '+y', ',y', 'zy'])
      assert.equal(
        new PatternMatcher([withoutCommaSpace(range)]).matches(name),
        new PatternMatcher([range]).matches(name),
        name,
      );
  });

  test('a ] outside a class is a literal, as in Go (it was refused as a regular expression error)', () => {
    for (const [pattern, name] of [
      ['notes]', 'notes]'],
      ['a]b', 'a]b'],
      ['[ab]]', 'a]'],
    ] as const) {
      assert.equal(new PatternMatcher([pattern]).matches(name), true, pattern);
      assert.equal(new PatternMatcher([pattern]).matches('notes'), false, pattern);
    }
  });
});

describe('walkContext with filters (tonistiigi/fsutil)', () => {
  test('include patterns select paths and send their parent directories', async () => {
    const d = await tree(['dir bar', 'file bar/foo', 'file foo2']);
    const both = ['dir bar', 'file bar/foo'];
    assert.deepEqual(await walked(d), ['dir bar', 'file bar/foo', 'file foo2']);
    assert.deepEqual(await walked(d, { include: ['bar'] }), both);
    assert.deepEqual(await walked(d, { include: ['bar/foo'] }), both);
    assert.deepEqual(await walked(d, { include: ['b*'] }), both);
    assert.deepEqual(await walked(d, { include: ['bar/f*'] }), both);
    assert.deepEqual(await walked(d, { include: ['bar/g*'] }), []);
    assert.deepEqual(await walked(d, { include: ['f*'] }), ['file foo2']);
    assert.deepEqual(await walked(d, { include: ['b*/f*'] }), both);
    assert.deepEqual(await walked(d, { include: ['b*/foo'] }), both);
    assert.deepEqual(await walked(d, { include: ['b*/'] }), both);
  });

  test('exclude patterns with an exception below an excluded directory', async () => {
    const d = await tree(['file bar', 'dir foo', 'file foo2', 'file foo/bar2', 'file foo/other']);
    assert.deepEqual(await walked(d, { exclude: ['foo*', '!foo/bar2'] }), [
      'file bar',
      'dir foo',
      'file foo/bar2',
    ]);
    assert.deepEqual(await walked(d, { exclude: ['foo'] }), ['file bar', 'file foo2']);
    // a wildcard exception: the excluded directory is walked, not skipped
    assert.deepEqual(await walked(d, { exclude: ['foo', '!foo/b*'] }), [
      'file bar',
      'dir foo',
      'file foo/bar2',
      'file foo2',
    ]);
    assert.deepEqual(await walked(d, { exclude: ['**', '!foo2'] }), ['file foo2']);
  });

  test('a directory is skipped when no exception could re-include anything below it', async () => {
    // an unreadable directory shows what is walked: skipping it must not fail
    const d = await tree(['dir foo', 'dir foo/bar', 'file foo/bar/baz', 'file top']);
    const filter = new ContextFilter({ exclude: ['**/bar', '!foo/bar/zzz'] });
    assert.equal(filter.check('foo/bar', true, {}).decision, 'hide'); // an exception names something below
    assert.equal(new ContextFilter({ exclude: ['**/bar'] }).check('foo/bar', true).decision, 'skip');
    assert.equal(
      new ContextFilter({ exclude: ['**/bar', '!other/x'] }).check('foo/bar', true).decision,
      'skip',
    );
    assert.equal(new ContextFilter({ exclude: ['**/bar', '!*/x'] }).check('foo/bar', true).decision, 'hide');
    assert.equal(new ContextFilter({ include: ['foo/bar/baz'] }).check('foo', true).decision, 'hide');
    assert.equal(new ContextFilter({ include: ['foo/bar/baz'] }).check('top', true).decision, 'skip');
    assert.equal(new ContextFilter({ include: ['*/bar/baz'] }).check('top', true).decision, 'hide');
    assert.deepEqual(await walked(d, { exclude: ['**/bar', '!foo/bar/zzz'] }), ['dir foo', 'file top']);
  });

  test('** include patterns', async () => {
    const d = await tree([
      'dir a/b/baz',
      'dir a/b/bar',
      'file a/b/bar/foo',
      'file a/b/bar/fop',
      'dir bar',
      'file bar/foo',
      'dir baz',
      'file foo2',
      'dir foo/bar',
      'file foo/bar/bee',
    ]);
    assert.deepEqual(await walked(d, { include: ['**/bar/foo'] }), [
      'dir a',
      'dir a/b',
      'dir a/b/bar',
      'file a/b/bar/foo',
      'dir bar',
      'file bar/foo',
    ]);
    assert.deepEqual(await walked(d, { include: ['**/foo/**'] }), [
      'dir foo',
      'dir foo/bar',
      'file foo/bar/bee',
    ]);
    assert.deepEqual(await walked(d, { include: ['**/baz'] }), [
      'dir a',
      'dir a/b',
      'dir a/b/baz',
      'dir baz',
    ]);
    assert.deepEqual(await walked(d, { include: ['**/bar/g*'] }), []);
    assert.deepEqual(await walked(d, { include: ['**/bar'] }), [
      'dir a',
      'dir a/b',
      'dir a/b/bar',
      'file a/b/bar/foo',
      'file a/b/bar/fop',
      'dir bar',
      'file bar/foo',
      'dir foo',
      'dir foo/bar',
      'file foo/bar/bee',
    ]);
  });

  test('follow paths add symlinks and their targets to the include patterns', async () => {
    const d = await tree([
      'file bar',
      'dir foo',
      'symlink foo/l1 /baz/one',
      'symlink foo/l2 /baz/two',
      'dir baz',
      'file baz/one',
      'symlink baz/two ../bax',
      'file bax',
      'file bay',
    ]);
    assert.deepEqual(await walked(d, { followPaths: ['foo/l*', 'bar'] }), [
      'file bar',
      'file bax',
      'dir baz',
      'file baz/one',
      'symlink:../bax baz/two',
      'dir foo',
      'symlink:/baz/one foo/l1',
      'symlink:/baz/two foo/l2',
    ]);
  });

  test('follow paths: loops, absolute links, missing paths and the root', async () => {
    const chain = await tree([
      'dir dir',
      'file dir/foo',
      'symlink dir/l1 foo',
      'symlink l2 dir/l1',
      'file bar',
    ]);
    assert.deepEqual(await resolveFollowPaths(chain, ['l2', 'bar']), ['bar', 'dir/foo', 'dir/l1', 'l2']);
    const loop = await tree(['symlink l1 l1', 'symlink l3 l2', 'symlink l2 l3']);
    assert.deepEqual(await resolveFollowPaths(loop, ['l1', 'l3']), ['l1', 'l2', 'l3']);
    const abs = await tree([
      'dir dir',
      'symlink dir/l1 /foo/bar/baz',
      'dir foo',
      'symlink foo/bar ../../../',
      'file baz',
    ]);
    assert.deepEqual(await resolveFollowPaths(abs, ['dir/l1']), ['baz', 'dir/l1', 'foo/bar']);
    const empty = await tree([]);
    assert.deepEqual(await resolveFollowPaths(empty, ['foo/bar/baz', 'bar/baz']), ['bar/baz', 'foo/bar/baz']);
    assert.equal(await resolveFollowPaths(empty, ['.']), undefined);
    assert.deepEqual(await resolveFollowPaths(empty, ['f*/foo/t*']), ['f*/foo/t*']);
    assert.deepEqual(await resolveFollowPaths(empty, ['foo/bar/baz', 'foo/bar']), ['foo/bar']);

    const root = await tree(['symlink foo .', 'file bar', 'file bax', 'dir bay', 'file bay/baz']);
    assert.deepEqual(await walked(root, { followPaths: ['foo'] }), [
      'file bar',
      'file bax',
      'dir bay',
      'file bay/baz',
      'symlink:. foo',
    ]);
  });

  test('a second path to an inode goes as a hardlink to the first path sent', async () => {
    const d = await tree(['file a/first data', 'hardlink b/second a/first', 'hardlink c a/first', 'file d']);
    assert.deepEqual(await walked(d), [
      'dir a',
      'file a/first',
      'dir b',
      'file b/second >a/first',
      'file c >a/first',
      'file d',
    ]);
    // the first path excluded: the next one sent is the one linked to
    assert.deepEqual(await walked(d, { exclude: ['a'] }), [
      'dir b',
      'file b/second',
      'file c >b/second',
      'file d',
    ]);
    const entries = [];
    for await (const e of walkContext(d)) entries.push(e);
    const linked = entries.find((e) => e.path === 'c');
    assert.equal(linked?.stat.size, 4); // like fsutil, a hardlink keeps its size
  });
});

test("toGoMode gives a unix socket Go's ModeSocket (walkContext leaves sockets out of a transfer)", () => {
  const mode = toGoMode({ mode: 0o140755n });
  assert.equal(mode & goMode.socket, goMode.socket);
  assert.equal(mode & 0o777, 0o755);
});

describe('transferRequest: the DiffCopy metadata', () => {
  test('lists joined by the HTTP/2 layer are split; URL-escaped values are decoded', () => {
    const md = new grpc.Metadata();
    md.set('dir-name', 'context');
    md.set('exclude-patterns', '*.pyc, node_modules, !keep/this');
    md.set('include-patterns', 'caf%C3%A9%2C+bar, src');
    md.set('include-patterns-encoded', '1');
    assert.deepEqual(transferRequest(md), {
      dirName: 'context',
      include: ['café, bar', 'src'],
      exclude: ['*.pyc', 'node_modules', '!keep/this'],
      followPaths: [],
    });
    assert.deepEqual(transferRequest(new grpc.Metadata()), {
      dirName: '',
      include: [],
      exclude: [],
      followPaths: [],
    });
  });
});
