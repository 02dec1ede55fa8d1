// FileSend pieces that need no daemon: mode conversion, path checks, atomic files, exporter indexes,
// and the local receiver driven by a fake daemon over loopback gRPC (including hostile paths).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { lstat, readFile, readdir, readlink, symlink, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { fsutil_types_Packet, fsutil_types_Stat } from '../../src/gen/types.js';
import {
  AtomicFileWriter,
  exportsFor,
  fileSendService,
  parentPath,
  safeRelativePath,
  type ExportTarget,
} from '../../src/buildkit/filesend.js';
import { fromGoMode } from '../../src/buildkit/go-mode.js';
import { serviceDefinition } from '../../src/buildkit/grpc-services.js';
import { codec } from '../../src/proto/schema.js';
import { tempDirsRemovedAfterTests } from '../support/temp-dirs.js';

/** A fresh temporary directory, removed after the tests. */
const tempDir = tempDirsRemovedAfterTests();

const DIR = 0x80000000;
const SYMLINK = 0x08000000;

describe('fromGoMode', () => {
  test('types and permission bits', () => {
    assert.deepEqual(fromGoMode((DIR | 0o755) >>> 0), { type: 'dir', perm: 0o755 });
    assert.deepEqual(fromGoMode(SYMLINK | 0o777), { type: 'symlink', perm: 0o777 });
    assert.deepEqual(fromGoMode(0o644), { type: 'file', perm: 0o644 });
    // setuid 1<<23, setgid 1<<22, sticky 1<<20
    assert.deepEqual(fromGoMode((1 << 23) | 0o755), { type: 'file', perm: 0o4755 });
    assert.deepEqual(fromGoMode((1 << 22) | 0o750), { type: 'file', perm: 0o2750 });
    assert.deepEqual(fromGoMode((DIR | (1 << 20) | 0o777) >>> 0), { type: 'dir', perm: 0o1777 });
    // device 1<<26 (+ char device 1<<21), named pipe 1<<25, socket 1<<24, irregular 1<<19
    assert.equal(fromGoMode((1 << 26) | (1 << 21) | 0o666).type, 'charDevice');
    assert.equal(fromGoMode((1 << 26) | 0o660).type, 'blockDevice');
    assert.equal(fromGoMode((1 << 25) | 0o644).type, 'namedPipe');
    assert.equal(fromGoMode((1 << 24) | 0o755).type, 'socket');
    assert.equal(fromGoMode((1 << 19) | 0o644).type, 'irregular');
  });
});

describe('safeRelativePath', () => {
  test('accepts clean relative paths', () => {
    for (const p of ['a', 'a/b', '.hidden', 'a..b', '...', 'a b/c\\d']) assert.equal(safeRelativePath(p), p);
  });
  test('rejects absolute, dot segments, empty segments and NUL', () => {
    for (const p of ['', '/a', '..', '.', '../a', 'a/..', 'a/../b', './a', 'a//b', 'a/', 'a\0b'])
      assert.throws(() => safeRelativePath(p), /unsafe path/, p);
  });
  test('parentPath', () => {
    assert.equal(parentPath('a'), '');
    assert.equal(parentPath('a/b/c'), 'a/b');
  });
});

describe('AtomicFileWriter', () => {
  test('the file appears under its name only when ended', async () => {
    const dir = await tempDir('cogts-atomic-');
    const path = join(dir, 'out.tar');
    const w = new AtomicFileWriter(path);
    w.write('hello ');
    await new Promise((resolve) => w.write('world', resolve));
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n === 'out.tar'),
      [],
    );
    await new Promise<void>((resolve, reject) =>
      w.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    assert.equal(await readFile(path, 'utf8'), 'hello world');
    assert.deepEqual(await readdir(dir), ['out.tar']);
  });

  test('a destroyed writer leaves nothing behind', async () => {
    const dir = await tempDir('cogts-atomic-');
    const w = new AtomicFileWriter(join(dir, 'out.tar'));
    await new Promise((resolve) => w.write('partial', resolve));
    const failed = new Promise((resolve) => w.on('error', resolve));
    const closed = new Promise((resolve) => w.on('close', resolve));
    w.destroy(new Error('export failed'));
    assert.match(String(await failed), /export failed/);
    await closed;
    assert.deepEqual(await readdir(dir), []);
  });
  const written = (w: AtomicFileWriter, data: string) =>
    new Promise<void>((resolve, reject) =>
      w.end(data, (err?: Error | null) => (err ? reject(err) : resolve())),
    );

  test('a symlink is written through: its target gets the data, the link stays', async () => {
    const dir = await tempDir('cogts-atomic-');
    await mkdir(join(dir, 'real'));
    await writeFile(join(dir, 'real', 'old.tar'), 'old');
    await symlink('real/old.tar', join(dir, 'to-file.tar'));
    await symlink('real/new.tar', join(dir, 'to-missing.tar'));
    await written(new AtomicFileWriter(join(dir, 'to-file.tar')), 'image one');
    await written(new AtomicFileWriter(join(dir, 'to-missing.tar')), 'image two');
    assert.equal(await readlink(join(dir, 'to-file.tar')), 'real/old.tar');
    assert.equal(await readlink(join(dir, 'to-missing.tar')), 'real/new.tar');
    assert.equal(await readFile(join(dir, 'real', 'old.tar'), 'utf8'), 'image one');
    assert.equal(await readFile(join(dir, 'real', 'new.tar'), 'utf8'), 'image two');
    assert.deepEqual((await readdir(join(dir, 'real'))).sort(), ['new.tar', 'old.tar'], 'no temporary left');
  });

  test('a relative link in a linked directory is followed from its real directory, as the kernel does', async () => {
    const root = await tempDir('cogts-atomic-');
    await mkdir(join(root, 'real', 'out'), { recursive: true });
    await mkdir(join(root, 'real', 'shared'));
    await symlink(join(root, 'real', 'out'), join(root, 'linked-out'));
    // `..` from the link's real directory is real/, not root/
    await symlink('../shared/image.tar', join(root, 'real', 'out', 'image.tar'));
    await written(new AtomicFileWriter(join(root, 'linked-out', 'image.tar')), 'image');
    assert.equal(await readFile(join(root, 'real', 'shared', 'image.tar'), 'utf8'), 'image');
    assert.equal(
      await readlink(join(root, 'real', 'out', 'image.tar')),
      '../shared/image.tar',
      'the link stays',
    );
    assert.deepEqual((await readdir(root)).sort(), ['linked-out', 'real'], 'nothing written beside the link');
  });

  test('a FIFO (or a device) is written straight into, not replaced by a file', async () => {
    const dir = await tempDir('cogts-atomic-');
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    // the reader is another process: one left waiting (a FIFO replaced by a file) is killed, not waited for
    const reader = spawn('cat', [fifo]);
    const read = new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      reader.stdout.on('data', (c: Buffer) => chunks.push(c));
      reader.on('close', () => resolve(Buffer.concat(chunks).toString()));
    });
    try {
      await written(new AtomicFileWriter(fifo), 'streamed');
      assert.ok((await lstat(fifo)).isFIFO(), 'still a FIFO');
      assert.equal(await read, 'streamed');
    } finally {
      reader.kill();
    }
    assert.deepEqual(await readdir(dir), ['pipe']);
    // a character device of our own (only root may make one): /dev/null's numbers
    if (process.getuid?.() === 0) {
      const device = join(dir, 'null');
      execFileSync('mknod', [device, 'c', '1', '3']);
      await written(new AtomicFileWriter(device), 'discarded');
      assert.ok((await lstat(device)).isCharacterDevice(), 'still a device');
      assert.deepEqual((await readdir(dir)).sort(), ['null', 'pipe']);
    }
  });
});

describe('exportsFor', () => {
  test('keeps exporter and target indexes aligned', () => {
    const { exporters, service } = exportsFor([
      { type: 'image', attrs: { name: 'r/x', push: 'true' } },
      { type: 'oci', output: '/tmp/x.tar', attrs: { name: 'x' } },
      { type: 'local', dir: '/tmp/out' },
      { type: 'docker', output: () => undefined },
      { type: 'tar', output: process.stdout },
    ]);
    assert.deepEqual(exporters, [
      { Type: 'image', Attrs: { name: 'r/x', push: 'true' } },
      { Type: 'oci', Attrs: { name: 'x' } },
      { Type: 'local', Attrs: {} },
      { Type: 'docker', Attrs: {} },
      { Type: 'tar', Attrs: {} },
    ]);
    assert.equal(service.name, 'moby.filesync.v1.FileSend');
  });
  test('oci/docker without tar need a content store', () => {
    assert.throws(
      () => exportsFor([{ type: 'oci', output: '/tmp/x', attrs: { tar: 'false' } }]),
      /content store/,
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// The local receiver against a fake daemon

const packetCodec = codec('fsutil.types.Packet');
const bytesCodec = codec('moby.buildkit.v1.BytesMessage');

let server: grpc.Server;
let address: string;
/** what the service under test serves; each test sets it */
const targets: (ExportTarget | undefined)[] = [];
const setTargets = (next: (ExportTarget | undefined)[]) => targets.splice(0, targets.length, ...next);

before(async () => {
  server = new grpc.Server();
  const service = fileSendService(targets);
  server.addService(serviceDefinition(service.name), service.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  address = `127.0.0.1:${port}`;
});

after(() => server.forceShutdown());

const Client = grpc.makeGenericClientConstructor(serviceDefinition('moby.filesync.v1.FileSend'), 'FileSend');

function call(id: number): grpc.ClientDuplexStream<Buffer, Buffer> {
  const client = new Client(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('buildkit-attachable-exporter-id', String(id));
  const stream = (
    client as unknown as {
      DiffCopy(md: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer>;
    }
  ).DiffCopy(metadata);
  stream.on('status', () => client.close());
  return stream;
}

interface Entry {
  readonly stat: fsutil_types_Stat;
  readonly data?: Buffer;
}

/**
 * Plays the daemon's fsutil sender: all STATs, an empty STAT, DATA for each REQ (in chunks of 5
 * bytes), FIN in answer to FIN. Resolves with the call's error, if any, and the packets received.
 */
function fakeDaemon(
  id: number,
  entries: Entry[],
): Promise<{ error?: grpc.ServiceError; got: fsutil_types_Packet[] }> {
  const stream = call(id);
  const send = (p: fsutil_types_Packet) => stream.write(Buffer.from(packetCodec.encode(p)));
  const got: fsutil_types_Packet[] = [];
  return new Promise((resolve) => {
    stream.on('data', (raw: Buffer) => {
      const p = packetCodec.decode(raw);
      got.push(p);
      if (p.type === 1) {
        const data = entries[p.ID ?? 0]?.data ?? Buffer.alloc(0);
        for (let i = 0; i < data.length; i += 5)
          send({ type: 2, ID: p.ID ?? 0, data: data.subarray(i, i + 5) });
        send({ type: 2, ID: p.ID ?? 0 });
      } else if (p.type === 3) {
        send({ type: 3 });
        stream.end();
      }
    });
    stream.on('error', (error: grpc.ServiceError) => resolve({ error, got }));
    stream.on('status', (s: grpc.StatusObject) => {
      if (s.code === grpc.status.OK) resolve({ got });
    });
    for (const e of entries) send({ type: 0, stat: e.stat });
    send({ type: 0 });
  });
}

const ns = (ms: number) => ms * 1e6;
const dir = (path: string, mode = 0o755): Entry => ({
  stat: { path, mode: (DIR | mode) >>> 0, modTime: ns(1e12) },
});
const file = (path: string, data: string, mode = 0o644): Entry => ({
  stat: { path, mode, size: data.length, modTime: ns(1.5e12) },
  data: Buffer.from(data),
});
const link = (path: string, target: string): Entry => ({
  stat: { path, mode: SYMLINK | 0o777, linkname: target },
});

describe('local receiver', () => {
  test('writes dirs, files, symlinks and hardlinks, then FIN', async () => {
    const out = join(await tempDir('cogts-recv-'), 'out');
    setTargets([{ kind: 'local', dir: out }]);
    const { error, got } = await fakeDaemon(0, [
      dir('a', 0o700),
      file('a/f', 'hello, receiver', 0o640),
      { stat: { path: 'a/h', mode: 0o640, linkname: 'a/f' } },
      link('a/l', '../x'),
      file('z', ''),
    ]);
    assert.equal(error, undefined);
    assert.deepEqual(
      got.map((p) => [p.type ?? 0, p.ID ?? 0]),
      [
        [1, 1],
        [1, 4],
        [3, 0],
      ],
    );
    assert.equal(await readFile(join(out, 'a/f'), 'utf8'), 'hello, receiver');
    assert.equal((await lstat(join(out, 'a/f'))).mode & 0o7777, 0o640);
    assert.equal((await lstat(join(out, 'a/f'))).mtimeMs, 1.5e12);
    assert.equal((await lstat(join(out, 'a'))).mtimeMs, 1e12);
    assert.equal((await lstat(join(out, 'a'))).mode & 0o7777, 0o700);
    assert.equal((await lstat(join(out, 'a/h'))).ino, (await lstat(join(out, 'a/f'))).ino);
    assert.equal(await readlink(join(out, 'a/l')), '../x');
    assert.equal((await lstat(join(out, 'z'))).size, 0);
  });

  test('picks the target by exporter id', async () => {
    const root = await tempDir('cogts-recv-');
    setTargets([
      { kind: 'local', dir: join(root, 'zero') },
      undefined,
      { kind: 'local', dir: join(root, 'two') },
    ]);
    assert.equal((await fakeDaemon(2, [file('f', 'x')])).error, undefined);
    assert.deepEqual(await readdir(root), ['two']);
    const missing = await fakeDaemon(1, [file('f', 'x')]);
    assert.equal(missing.error?.code, grpc.status.NOT_FOUND);
  });

  for (const [name, entries, message] of [
    ['an escaping path', [file('../escape', 'x')], /unsafe path/],
    ['an absolute path', [file('/etc/evil', 'x')], /unsafe path/],
    ['a child before its directory', [file('a/b', 'x')], /before its directory/],
    ['a path through a symlink', [link('a', '/tmp'), file('a/evil', 'x')], /before its directory/],
    [
      'a hardlink to an unknown file',
      [{ stat: { path: 'h', mode: 0o644, linkname: 'etc/passwd' } }],
      /unknown/,
    ],
    ['a duplicate path', [file('f', 'x'), file('f', 'y')], /twice/],
  ] as const) {
    test(`rejects ${name}, writing nothing outside the dir`, async () => {
      const root = await tempDir('cogts-recv-');
      const out = join(root, 'out');
      await mkdir(out);
      setTargets([{ kind: 'local', dir: out }]);
      const { error, got } = await fakeDaemon(0, [...entries]);
      assert.match(error?.details ?? '', message);
      assert.ok(
        got.some((p) => p.type === 4),
        'an ERR packet told the sender',
      );
      assert.deepEqual((await readdir(root)).sort(), ['out']);
      assert.deepEqual(
        (await readdir(out)).filter((n) => n.startsWith('.cogts-tmp-')),
        [],
      );
    });
  }

  test('an existing symlink in the target is replaced, not followed', async () => {
    const root = await tempDir('cogts-recv-');
    const out = join(root, 'out');
    await mkdir(out);
    await mkdir(join(root, 'elsewhere'));
    await symlink(join(root, 'elsewhere'), join(out, 'a'));
    setTargets([{ kind: 'local', dir: out }]);
    const { error } = await fakeDaemon(0, [dir('a'), file('a/f', 'inside')]);
    assert.equal(error, undefined);
    assert.ok((await lstat(join(out, 'a'))).isDirectory());
    assert.deepEqual(await readdir(join(root, 'elsewhere')), []);
  });
});

function tarCall(metadata = new grpc.Metadata()) {
  const client = new Client(address, grpc.credentials.createInsecure());
  const stream = (
    client as unknown as { DiffCopy(md: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer> }
  ).DiffCopy(metadata);
  const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
  stream.on('error', () => undefined);
  stream.on('data', () => undefined);
  void status.then(() => client.close());
  const send = (text: string) => stream.write(Buffer.from(bytesCodec.encode({ data: Buffer.from(text) })));
  return { stream, status, send };
}

describe('tar receiver', () => {
  for (const delay of [0, 50]) {
    test(`an output that fails to open fails the call (chunks after ${delay} ms)`, async () => {
      const root = await tempDir('cogts-recv-tar-');
      setTargets([{ kind: 'tar', open: () => new AtomicFileWriter(join(root, 'missing', 'x.tar')) }]);
      const { stream, status, send } = tarCall();
      await new Promise((resolve) => setTimeout(resolve, delay));
      for (const part of ['one', 'two', 'three']) send(part);
      stream.end();
      const result = await status;
      assert.equal(result.code, grpc.status.UNKNOWN);
      assert.match(result.details, /ENOENT/);
      assert.deepEqual(await readdir(root), []);
    });
  }

  test('a cancelled export leaves no file behind', async () => {
    const root = await tempDir('cogts-recv-tar-');
    let opened: AtomicFileWriter | undefined;
    setTargets([{ kind: 'tar', open: () => (opened = new AtomicFileWriter(join(root, 'x.tar'))) }]);
    const { stream, status, send } = tarCall();
    send('partial');
    while (!opened) await new Promise((resolve) => setTimeout(resolve, 10));
    stream.cancel();
    assert.equal((await status).code, grpc.status.CANCELLED);
    await new Promise((resolve) => opened?.once('close', resolve));
    assert.deepEqual(await readdir(root), []);
  });

  test('streams BytesMessage chunks to the Writable and passes exporter metadata', async () => {
    const root = await tempDir('cogts-recv-tar-');
    let seen: Record<string, string> = {};
    setTargets([
      {
        kind: 'tar',
        open: (md) => {
          seen = md;
          return new AtomicFileWriter(join(root, 'x.tar'));
        },
      },
    ]);
    const client = new Client(address, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set('exporter-md-containerimage.digest', 'sha256:abc');
    const stream = (
      client as unknown as { DiffCopy(md: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer> }
    ).DiffCopy(metadata);
    const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
    stream.on('data', () => undefined);
    for (const part of ['one ', 'two ', 'three'])
      stream.write(Buffer.from(bytesCodec.encode({ data: Buffer.from(part) })));
    stream.end();
    assert.equal((await status).code, grpc.status.OK);
    client.close();
    assert.deepEqual(seen, { 'containerimage.digest': 'sha256:abc' });
    assert.equal(await readFile(join(root, 'x.tar'), 'utf8'), 'one two three');
  });
});
