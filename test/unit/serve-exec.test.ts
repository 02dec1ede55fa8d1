import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import type { ExecStream } from '../../src/buildkit/gateway.js';
import { parsePublish, publishNote, splitExecArgv as split } from '../../src/cli/exec.js';
import { processEnv } from '../../src/cli/model-container.js';
import { checkHost, checkPort, checkUploadUrl, remoteDaemonNote, serverArgs } from '../../src/cli/serve.js';
import { CogError } from '../../src/errors.js';
import type { moby_buildkit_v1_frontend_ExecMessage } from '../../src/gen/types.js';
import { ContainerProcess, containerRequest, initMessage, signalName } from '../../src/runtime/container.js';

describe('cog exec arguments', () => {
  test('the command starts at the first argument that is not a cog option', () => {
    const splitExecArgv = (argv: string[]) => split(argv, ['env', 'e', 'publish', 'p', 'secret']);
    assert.deepEqual(splitExecArgv(['-e', 'A=b', 'python', '-c', 'x', '-e', 'y']), {
      options: ['-e', 'A=b'],
      command: ['python', '-c', 'x', '-e', 'y'],
    });
    assert.deepEqual(splitExecArgv(['--env=A=b', '-p', '80', '--', '-weird']), {
      options: ['--env=A=b', '-p', '80'],
      command: ['-weird'],
    });
    // --secret's value is cog's, not the command (`cog exec --secret id=t,src=f cat x`)
    assert.deepEqual(splitExecArgv(['--secret', 'id=t,src=f', 'cat', 'x']), {
      options: ['--secret', 'id=t,src=f'],
      command: ['cat', 'x'],
    });
    assert.deepEqual(splitExecArgv(['--help']), { options: ['--help'], command: [] });
    assert.deepEqual(splitExecArgv([]), { options: [], command: [] });
  });

  test('-p takes PORT, HOST:PORT and [IPV6]:PORT', () => {
    assert.deepEqual(parsePublish('8888'), { host: '127.0.0.1', port: 8888 });
    assert.deepEqual(parsePublish('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
    assert.deepEqual(parsePublish('[::1]:5000'), { host: '::1', port: 5000 });
    assert.deepEqual(parsePublish('127.0.0.1:9999'), { host: '127.0.0.1', port: 9999 });
    // docker's HOSTPORT:CONTAINERPORT with the same port twice is that port
    assert.deepEqual(parsePublish('9999:9999'), { host: '127.0.0.1', port: 9999 });
    for (const bad of ['', 'x', '70000', '0', 'a:b', '1:2:3', '[::1]']) {
      assert.throws(() => parsePublish(bad), CogError, bad);
    }
  });

  test('the publish note says where the ports are', () => {
    assert.match(
      publishNote([{ host: '127.0.0.1', port: 8888 }], 'unix:///run/b.sock'),
      /8888.*on this host/,
    );
    assert.match(
      publishNote([{ host: '127.0.0.1', port: 1 }], 'tcp://10.0.0.2:1234'),
      /buildkitd.*10\.0\.0\.2/,
    );
  });
});

describe('cog serve', () => {
  test('the server command line binds --host and passes --upload-url', () => {
    assert.deepEqual(serverArgs({ host: '127.0.0.1', uploadUrl: undefined }), [
      'python',
      '--check-hash-based-pycs',
      'never',
      '-m',
      'cog.server.http',
      '--host',
      '127.0.0.1',
    ]);
    assert.deepEqual(serverArgs({ host: '0.0.0.0', uploadUrl: 'http://u/' }).slice(-4), [
      '--host',
      '0.0.0.0',
      '--upload-url',
      'http://u/',
    ]);
  });

  test('ports are checked', () => {
    assert.equal(checkPort(8393), 8393);
    for (const bad of [0, -1, 65536, 1.5, Number.NaN]) assert.throws(() => checkPort(bad), CogError);
  });

  test('--host and --upload-url are checked before anything runs (the server died on them)', () => {
    for (const good of ['127.0.0.1', '0.0.0.0', '10.1.2.3']) assert.equal(checkHost(good), good);
    assert.equal(checkHost('localhost'), '127.0.0.1');
    // the Cog server (coglet) exits on a host name or an IPv6 address: "invalid socket address syntax"
    for (const bad of ['bad host', '', '::', '::1', '[::1]', 'my-host.example', 'a..b', '-x', 'host:80'])
      assert.throws(
        () => checkHost(bad),
        (err: unknown) =>
          err instanceof CogError &&
          err.message === `--host ${JSON.stringify(bad)} is not an IPv4 address to bind` &&
          /--host 0\.0\.0\.0/.test(err.hint ?? ''),
      );
    assert.equal(checkUploadUrl(undefined), undefined);
    assert.equal(checkUploadUrl('https://u.example/p/'), 'https://u.example/p/');
    for (const bad of ['u.example/p', 'ftp://u.example/', ''])
      assert.throws(() => checkUploadUrl(bad), /is not an http or https URL/);
  });

  test('a remote daemon gets a note', () => {
    assert.equal(remoteDaemonNote('unix:///x.sock', 1), undefined);
    assert.equal(remoteDaemonNote(undefined, 1), undefined);
    assert.match(remoteDaemonNote('tcp://h:1', 8393) ?? '', /8393 opens on its host/);
  });

  test('process env: the image env with ours on top', () => {
    assert.deepEqual(processEnv(['PATH=/bin', 'A=1', 'junk'], { A: '2', PORT: '5' }), [
      'PATH=/bin',
      'A=2',
      'PORT=5',
    ]);
    assert.deepEqual(processEnv(undefined, {}), []);
  });
});

describe('gateway container messages', () => {
  test('NewContainer: root first, refs by result id, host network', () => {
    const request = containerRequest('abc', {
      mounts: [
        { dest: '/src', ref: 'r2', readonly: true },
        { dest: '/', ref: 'r1' },
      ],
      network: 'host',
      platform: { OS: 'linux', Architecture: 'amd64' },
    });
    assert.equal(request.ContainerID, 'abc');
    assert.equal(request.Network, 1);
    assert.deepEqual(
      request.Mounts?.map((m) => [m.dest, m.resultID, m.readonly ?? false, m.mountType]),
      [
        ['/', 'r1', false, 0],
        ['/src', 'r2', true, 0],
      ],
    );
    assert.throws(() => containerRequest('x', { mounts: [{ dest: '/src', ref: 'r' }] }), CogError);
  });

  test('Init: args, env, cwd, user, fds and tty', () => {
    const message = initMessage('ctr', 'p1', {
      args: ['python'],
      env: ['A=1'],
      cwd: '/src',
      user: 'nobody',
      tty: true,
      stdin: true,
    });
    assert.equal(message.ProcessID, 'p1');
    assert.equal(message.Init?.ContainerID, 'ctr');
    assert.deepEqual(message.Init?.Meta, { args: ['python'], env: ['A=1'], cwd: '/src', user: 'nobody' });
    assert.deepEqual(message.Init?.Fds, [0, 1, 2]);
    assert.equal(message.Init?.Tty, true);
    assert.deepEqual(initMessage('c', 'p', { args: [], env: [], cwd: '/' }).Init?.Fds, [1, 2]);
  });

  test('signal names lose their SIG prefix', () => {
    assert.equal(signalName('SIGTERM'), 'TERM');
    assert.equal(signalName('INT'), 'INT');
  });
});

/** A fake ExecProcess stream: what the client writes is recorded; `reply` plays the daemon. */
function fakeStream() {
  const sent: moby_buildkit_v1_frontend_ExecMessage[] = [];
  const stream = new Duplex({
    objectMode: true,
    read() {},
    write(message: moby_buildkit_v1_frontend_ExecMessage, _encoding, done) {
      sent.push(message);
      done();
    },
  });
  const reply = (message: Omit<moby_buildkit_v1_frontend_ExecMessage, 'ProcessID'>, id = 'p1') =>
    stream.push({ ProcessID: id, ...message });
  return { stream: stream as unknown as ExecStream, sent, reply, duplex: stream };
}

async function collect(readable: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of readable) text += String(chunk);
  return text;
}

describe('ContainerProcess', () => {
  test('output, exit code and Done; stdin frames and end-of-file', async () => {
    const { stream, sent, reply } = fakeStream();
    const process = new ContainerProcess(stream, 'p1', { args: ['x'], env: [], cwd: '/', stdin: true });
    const stdout = collect(process.stdout);
    const stderr = collect(process.stderr);
    reply({ Started: {} });
    await process.started;
    process.stdin?.write(Buffer.from('in'));
    await new Promise<void>((resolve) => process.stdin?.end(resolve));
    process.signal('SIGINT');
    process.resize(24, 80);
    reply({ File: { Fd: 1, Data: Buffer.from('out') } });
    reply({ File: { Fd: 2, Data: Buffer.from('err') } });
    reply({ File: { Fd: 1, Data: Buffer.from('!') } }, 'other-process');
    reply({ Exit: { Code: 3 } });
    reply({ File: { Fd: 1, Data: Buffer.from(' late') } });
    reply({ File: { Fd: 1, EOF: true } });
    reply({ File: { Fd: 2, EOF: true } });
    reply({ Done: {} });
    assert.deepEqual(await process.exited, { code: 3 });
    assert.equal(await stdout, 'out late');
    assert.equal(await stderr, 'err');
    assert.deepEqual(
      sent.map((m) => m.File ?? m.Signal ?? m.Resize),
      [{ Fd: 0, Data: Buffer.from('in') }, { Fd: 0, EOF: true }, { Name: 'INT' }, { Rows: 24, Cols: 80 }],
    );
  });

  test('a stream error before Exit rejects; after Exit the exit stands', async () => {
    const first = fakeStream();
    const failing = new ContainerProcess(first.stream, 'p1', { args: [], env: [], cwd: '/' });
    first.duplex.destroy(new Error('gone'));
    await assert.rejects(failing.exited, /gone/);
    await assert.rejects(failing.started, /gone/);

    const second = fakeStream();
    const exiting = new ContainerProcess(second.stream, 'p1', { args: [], env: [], cwd: '/' });
    second.reply({ Exit: { Code: 0, Error: { message: 'killed' } } });
    await new Promise((resolve) => setImmediate(resolve));
    second.duplex.destroy(new Error('gone'));
    assert.deepEqual(await exiting.exited, { code: 0, error: 'killed' });

    const third = fakeStream();
    const vanished = new ContainerProcess(third.stream, 'p1', { args: [], env: [], cwd: '/' });
    third.duplex.push(null);
    assert.equal((await vanished.exited).code, 255);
  });
});
