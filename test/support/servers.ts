import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { execOk } from './exec.js';

/** An HTTP server on 127.0.0.1 serving one fixed body at every path. */
export async function serveText(body: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/file.txt`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A TCP port on loopback that nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}

/**
 * `count` different TCP ports on loopback that nothing listens on: all are bound before any is
 * released (two freePort() calls one after another can be given the same port).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  for (const server of servers) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  return ports;
}

/** A `git daemon` on 127.0.0.1 serving a one-commit repository `repo.git` with branch `main`. */
export async function serveGitRepo(): Promise<{ url: string; close(): void }> {
  const base = await mkdtemp(join(tmpdir(), 'cogts-git-'));
  const work = join(base, 'work');
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 't',
    GIT_AUTHOR_EMAIL: 't@t',
    GIT_COMMITTER_NAME: 't',
    GIT_COMMITTER_EMAIL: 't@t',
  };
  await execOk('git', ['init', '-q', '-b', 'main', work], { env });
  await writeFile(join(work, 'README'), 'from git\n');
  await execOk('git', ['-C', work, 'add', 'README'], { env });
  await execOk('git', ['-C', work, 'commit', '-q', '-m', 'one'], { env });
  await execOk('git', ['clone', '-q', '--bare', work, join(base, 'repo.git')], { env });
  const port = await freePort();
  const daemon = spawn(
    'git',
    [
      'daemon',
      '--reuseaddr',
      '--export-all',
      `--base-path=${base}`,
      '--listen=127.0.0.1',
      `--port=${port}`,
      base,
    ],
    { stdio: 'ignore' },
  );
  // wait until it accepts connections
  for (let i = 0; i < 50; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      () => true,
      (err: unknown) => !String((err as { cause?: { code?: string } }).cause?.code).includes('ECONNREFUSED'),
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `git://127.0.0.1:${port}/repo.git`, close: () => daemon.kill() };
}
