/**
 * A corpus of small LLB graphs that together use every op, file action and mount kind. `cog debug llb
 * --example NAME` writes one as a Definition; the end-to-end tests solve them all and check that the
 * daemon's vertex digests equal ours.
 */
import { FileActions } from './file.js';
import { git, http, image } from './source.js';
import { type State, diff, merge, scratch } from './state.js';

export interface ExampleInputs {
  /** a URL the daemon can fetch (for the http source) */
  readonly httpUrl: string;
  /** a git repository URL the daemon can clone */
  readonly gitUrl: string;
}

export interface Example {
  readonly name: string;
  /** entitlements the solve needs */
  readonly entitlements?: readonly string[];
  build(inputs: ExampleInputs): State;
}

const py = () => image('python:3.11-slim');

export const examples: readonly Example[] = [
  { name: 'image-only', build: () => py().mkdir('/marker') },
  {
    name: 'image-resolve-pull',
    build: () => image('python:3.11-slim', { resolveMode: 'pull' }).mkdir('/m'),
  },
  {
    name: 'run-args',
    build: () =>
      py()
        .run({ args: ['python', '-c', 'print(1)'] })
        .root(),
  },
  {
    name: 'run-shell-env-cwd-user',
    build: () =>
      py()
        .withEnv('B', '2')
        .withEnv('A', '1')
        .withCwd('/srv/app')
        .withUser('root')
        .run({ shell: 'echo "$A$B" > out.txt', env: { C: '3' }, name: 'custom step name' })
        .root(),
  },
  {
    name: 'run-readonly-bind',
    build: () => {
      const data = scratch().mkfile('/data.txt', 'data');
      return py()
        .run({
          shell: 'cp /in/data.txt /copied.txt',
          mounts: [{ type: 'bind', dest: '/in', source: data, readonly: true }],
        })
        .root();
    },
  },
  {
    name: 'run-writable-bind-output',
    build: () => {
      const out = scratch().mkdir('/o');
      return py()
        .run({ shell: 'echo x > /out/o/x.txt', mounts: [{ type: 'bind', dest: '/out', source: out }] })
        .mount('/out');
    },
  },
  {
    name: 'run-bind-selector',
    build: () => {
      const data = scratch().mkdir('/sub').mkfile('/sub/f', 'f');
      return py()
        .run({
          shell: 'cat /in/f > /f.txt',
          mounts: [{ type: 'bind', dest: '/in', source: data, selector: '/sub', readonly: true }],
        })
        .root();
    },
  },
  {
    name: 'run-cache-mounts',
    build: () =>
      py()
        .run({
          shell: 'date > /c1/t && date > /c2/t && date > /c3/t',
          mounts: [
            { type: 'cache', dest: '/c1', id: 'cogts-corpus-shared' },
            { type: 'cache', dest: '/c2', id: 'cogts-corpus-private', sharing: 'private' },
            { type: 'cache', dest: '/c3', id: 'cogts-corpus-locked', sharing: 'locked' },
          ],
        })
        .root(),
  },
  {
    name: 'run-tmpfs',
    build: () =>
      py()
        .run({
          shell: 'echo t > /scratch/t',
          mounts: [{ type: 'tmpfs', dest: '/scratch', size: 64 * 1024 * 1024 }],
        })
        .root(),
  },
  {
    name: 'run-optional-secret-and-ssh',
    build: () =>
      py()
        .run({
          shell: 'test ! -s /run/secrets/absent',
          mounts: [
            { type: 'secret', id: 'absent' },
            { type: 'ssh', dest: '/run/ssh.sock' },
          ],
          secretEnv: { ABSENT_TOKEN: { id: 'absent-token' } },
        })
        .root(),
  },
  {
    name: 'run-network-none',
    build: () => py().withNetwork('none').run({ shell: 'true' }).root(),
  },
  {
    name: 'run-network-host-insecure',
    entitlements: ['network.host', 'security.insecure'],
    build: () => py().withNetwork('host').withSecurity('insecure').run({ shell: 'true' }).root(),
  },
  {
    name: 'run-hostname-extrahosts-exitcodes',
    build: () =>
      py()
        .withHostname('cogbuilder')
        .run({ shell: 'exit 3', extraHosts: { 'cog.internal': '127.0.0.1' }, validExitCodes: [0, 3] })
        .root(),
  },
  {
    name: 'file-mkdir-mkfile-chain',
    build: () =>
      scratch().file(
        new FileActions('/')
          .mkdir('/a/b', { parents: true, mode: 0o700, owner: { user: 1000, group: 1000 } })
          .mkfile('/a/b/c.txt', 'hello', { mode: 0o600, time: 1_700_000_000_000 }),
        { name: 'make files' },
      ),
  },
  {
    name: 'file-rm',
    build: () => py().rm('/etc/motd', { allowNotFound: true }).rm('/tmp/*', { allowWildcard: true }),
  },
  {
    name: 'file-copy-options',
    build: () => {
      const src = scratch().mkdir('/src').mkfile('/src/a.py', 'a').mkfile('/src/b.txt', 'b');
      return py().copy(src, '/src/', '/app/', {
        contentsOnly: true,
        createDestPath: true,
        followSymlinks: true,
        include: ['*.py'],
        exclude: ['b.txt'],
        owner: { user: 'root', group: 'root' },
        mode: 0o644,
      });
    },
  },
  {
    name: 'file-copy-wildcard-modestr',
    build: () => {
      const src = scratch().mkfile('/x1.sh', '#!/bin/sh').mkfile('/x2.sh', '#!/bin/sh');
      return scratch().copy(src, '/x*.sh', '/bin/', {
        allowWildcard: true,
        allowEmptyWildcard: true,
        createDestPath: true,
        mode: 'u+x',
        replaceExisting: true,
      });
    },
  },
  {
    name: 'file-symlink',
    build: () => scratch().mkfile('/target', 't').symlink('/target', '/link', { time: 1_700_000_000_000 }),
  },
  {
    name: 'file-multi-input-chain',
    build: () => {
      const a = scratch().mkfile('/a', 'a');
      const b = scratch().mkfile('/b', 'b');
      return scratch().file(new FileActions('/').copy(a, '/a', '/a').copy(b, '/b', '/b').mkdir('/c'));
    },
  },
  {
    name: 'merge',
    build: () =>
      merge([py(), scratch().mkfile('/one', '1'), scratch().mkfile('/two', '2')], { name: 'merge layers' }),
  },
  {
    name: 'diff',
    build: () => {
      const base = py();
      return diff(base, base.run({ shell: 'echo d > /d.txt' }).root());
    },
  },
  {
    name: 'diff-from-scratch-then-merge',
    build: () => {
      const layer = diff(scratch(), scratch().mkfile('/l', 'l'));
      return merge([py(), layer]);
    },
  },
  {
    name: 'progress-group-ignore-cache',
    build: () =>
      py()
        .run({
          shell: 'true',
          progressGroup: { id: 'grp', name: 'a group' },
          ignoreCache: true,
          description: { 'com.example.note': 'x' },
        })
        .root(),
  },
  {
    name: 'http-source',
    build: ({ httpUrl }) =>
      py().copy(http(httpUrl, { filename: 'fetched.txt', mode: 0o600 }), '/fetched.txt', '/f.txt'),
  },
  {
    name: 'git-source',
    build: ({ gitUrl }) => py().copy(git(gitUrl, { ref: 'main', keepGitDir: true }), '/', '/repo/'),
  },
];

export function findExample(name: string): Example | undefined {
  return examples.find((e) => e.name === name);
}
