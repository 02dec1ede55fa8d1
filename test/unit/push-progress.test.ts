// Push progress rendering, the push history that picks mount sources, the pure parts of `cog push`, and
// the checks of a build's image name.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { pushSummary, pushTarget, replicateModelUrl } from '../../src/cli/push.js';
import { explainPushError } from '../../src/cli/push-refusal.js';
import { imageDestination, imageNameSource } from '../../src/cli/push-destination.js';
import type { CogError } from '../../src/errors.js';
import { blobMountSources, withPush } from '../../src/image/push-history.js';
import {
  type PushView,
  applyPushEvent,
  createPushProgress,
  formatRate,
  plainPushLine,
  renderPushFrame,
  shortDigest,
} from '../../src/progress/push-progress.js';
import { type PushProgress, RegistryError, parseReference } from '../../src/registry/index.js';

const d1 = `sha256:${'a'.repeat(64)}`;
const d2 = `sha256:${'b'.repeat(64)}`;
const MiB = 1024 * 1024;

function event(digest: string, size: number, done: number, state: PushProgress['blob']['state'], total = 0) {
  return {
    blob: { digest, size, done, state },
    total: { done: total, size: 200 * MiB, bytesPerSecond: 10 * MiB },
  } satisfies PushProgress;
}

function capture() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  return { out: Object.assign(out, { columns: 80 }), text: () => text };
}

describe('push progress', () => {
  test('short digests and rates', () => {
    assert.equal(shortDigest(d1), 'sha256:aaaaaaaaaaaa');
    assert.equal(formatRate(1.5 * MiB), '1.5 MiB/s');
  });

  test('plain lines come once per state change, with sizes and upload time', () => {
    let now = 1000;
    const { out, text } = capture();
    const p = createPushProgress('plain', out, { target: 'r/x:y', now: () => now });
    p.onProgress(event(d1, 12.3 * MiB, 0, 'waiting'));
    p.onProgress(event(d1, 12.3 * MiB, 0, 'checking'));
    p.onProgress(event(d1, 12.3 * MiB, MiB, 'uploading'));
    p.onProgress(event(d1, 12.3 * MiB, 2 * MiB, 'uploading'));
    now += 1200;
    p.onProgress(event(d1, 12.3 * MiB, 12.3 * MiB, 'pushed'));
    p.onProgress(event(d2, 2048, 2048, 'exists'));
    p.onProgress(event(`sha256:${'c'.repeat(64)}`, 512, 512, 'mounted'));
    assert.equal(
      text(),
      [
        'pushing sha256:aaaaaaaaaaaa 12.3 MiB',
        'pushed  sha256:aaaaaaaaaaaa 12.3 MiB in 1.2s (10.3 MiB/s)',
        'exists  sha256:bbbbbbbbbbbb 2.0 KiB',
        'mounted sha256:cccccccccccc 512 B',
        '',
      ].join('\n'),
    );
  });

  test('plain mode: a long upload prints the totals when nothing was printed for plainEveryMs', () => {
    let now = 0;
    const { out, text } = capture();
    const p = createPushProgress('plain', out, { target: 'r/x:y', now: () => now, plainEveryMs: 10_000 });
    p.onProgress(event(d1, 100 * MiB, 0, 'uploading'));
    for (const [at, done] of [
      [5_000, 20],
      [10_500, 40],
      [12_000, 50],
      [20_000, 70],
      [20_600, 75],
    ] as const) {
      now = at;
      p.onProgress(event(d1, 100 * MiB, done * MiB, 'uploading', done * MiB));
    }
    now = 22_000;
    p.onProgress(event(d1, 100 * MiB, 100 * MiB, 'pushed', 100 * MiB));
    assert.deepEqual(text().split('\n'), [
      'pushing sha256:aaaaaaaaaaaa 100.0 MiB',
      'pushing r/x:y: 40.0 MiB / 200.0 MiB, 10.0 MiB/s',
      'pushing r/x:y: 75.0 MiB / 200.0 MiB, 10.0 MiB/s',
      'pushed  sha256:aaaaaaaaaaaa 100.0 MiB in 22.0s (4.5 MiB/s)',
      '',
    ]);
  });

  test('the view keeps the highest byte counts when an event reports fewer (a resent chunk)', () => {
    const view: PushView = {
      target: 'r/x:y',
      blobs: new Map(),
      total: { done: 0, size: 0, bytesPerSecond: 0 },
    };
    applyPushEvent(view, event(d1, 80 * MiB, 40 * MiB, 'uploading', 40 * MiB), 0);
    applyPushEvent(view, event(d1, 80 * MiB, 32 * MiB, 'uploading', 32 * MiB), 0);
    assert.equal(view.blobs.get(d1)?.done, 40 * MiB);
    assert.equal(view.total.done, 40 * MiB);
    applyPushEvent(view, event(d1, 80 * MiB, 48 * MiB, 'uploading', 48 * MiB), 0);
    assert.equal(view.blobs.get(d1)?.done, 48 * MiB);
    assert.equal(view.total.done, 48 * MiB);
    assert.equal(view.total.bytesPerSecond, 10 * MiB);
  });

  test('a blob uploaded again after it counted as there gets a fresh upload time', () => {
    let now = 1000;
    const { out, text } = capture();
    const p = createPushProgress('plain', out, { target: 'r/x:y', now: () => now });
    p.onProgress(event(d1, 4 * MiB, 4 * MiB, 'exists'));
    now = 5000;
    p.onProgress(event(d1, 4 * MiB, 4 * MiB, 'uploading'));
    now = 7000;
    p.onProgress(event(d1, 4 * MiB, 4 * MiB, 'pushed'));
    assert.match(text(), /^pushed {2}sha256:a{12} 4\.0 MiB in 2\.0s \(2\.0 MiB\/s\)$/m);
  });

  test('plainPushLine says nothing for waiting and checking', () => {
    assert.equal(plainPushLine({ digest: d1, size: 1, done: 0, state: 'waiting' }), undefined);
    assert.equal(plainPushLine({ digest: d1, size: 1, done: 0, state: 'checking' }), undefined);
  });

  test('a tty frame: header with totals and rate, a row per blob, cut to the width', () => {
    const view: PushView = {
      target: 'r8.im/u/m:latest',
      blobs: new Map(),
      total: { done: 0, size: 0, bytesPerSecond: 0 },
    };
    applyPushEvent(view, event(d1, 80 * MiB, 0, 'uploading', 0), 1000);
    assert.deepEqual(renderPushFrame(view, 200, 1000)[1], ' sha256:aaaaaaaaaaaa  uploading  0 B / 80.0 MiB');
    applyPushEvent(view, event(d1, 80 * MiB, 20 * MiB, 'uploading', 41 * MiB), 2000);
    applyPushEvent(view, event(d2, 2048, 2048, 'exists', 41 * MiB), 2000);
    assert.deepEqual(renderPushFrame(view, 200, 5000), [
      'Pushing r8.im/u/m:latest  41.0 MiB / 200.0 MiB  10.0 MiB/s',
      ' sha256:aaaaaaaaaaaa  uploading  20.0 MiB / 80.0 MiB  5.0 MiB/s',
      ' sha256:bbbbbbbbbbbb  exists     2.0 KiB',
    ]);
    assert.ok(renderPushFrame(view, 20, 5000).every((l) => l.length <= 20));
  });

  test('a tty frame within a height: uploading and pending blobs first, one line counting the rest', () => {
    const view: PushView = {
      target: 'r/x:v1',
      blobs: new Map(),
      total: { done: 0, size: 0, bytesPerSecond: 0 },
    };
    const digest = (n: number) => `sha256:${String(n).repeat(64)}`;
    for (let n = 1; n <= 6; n++) applyPushEvent(view, event(digest(n), 1024, 1024, 'pushed', 0), 1000);
    applyPushEvent(view, event(digest(7), 1024, 0, 'waiting', 0), 1000);
    applyPushEvent(view, event(digest(8), 4096, 1024, 'uploading', 0), 1000);
    const frame = renderPushFrame(view, 200, 2000, 4);
    assert.equal(frame.length, 4);
    assert.match(frame[1]!, /^ sha256:777777777777 {2}waiting/);
    assert.match(frame[2]!, /^ sha256:888888888888 {2}uploading/);
    assert.equal(frame[3], ' … 6 more (6 done, 0 to go)');
    assert.equal(renderPushFrame(view, 200, 2000, 20).length, 9, 'all of them when they fit');
  });

  test('tty mode redraws in place and draws a final frame on close', async () => {
    const { out, text } = capture();
    const p = createPushProgress('tty', out, { target: 't', refreshMs: 0 });
    p.onProgress(event(d1, 100, 0, 'checking'));
    p.onProgress(event(d1, 100, 100, 'exists'));
    await p.close();
    const esc = String.fromCharCode(27);
    assert.ok(text().includes(`${esc}[2A\r`), 'the cursor goes back over the first frame');
    assert.ok(text().endsWith(`exists     100 B${esc}[K\n`), JSON.stringify(text()));
  });

  test('tty mode on a 5-row terminal never moves the cursor up more than the 4 lines it drew', async () => {
    const { out, text } = capture();
    Object.assign(out, { rows: 5 });
    const p = createPushProgress('tty', out, { target: 't', refreshMs: 0 });
    for (let n = 1; n <= 9; n++) p.onProgress(event(`sha256:${String(n).repeat(64)}`, 100, 0, 'waiting'));
    for (let n = 1; n <= 9; n++) p.onProgress(event(`sha256:${String(n).repeat(64)}`, 100, 100, 'pushed'));
    await p.close();
    const ups = [...text().matchAll(new RegExp(`${String.fromCharCode(27)}\\[(\\d+)A`, 'g'))].map((m) =>
      Number(m[1]),
    );
    assert.ok(ups.length > 0 && Math.max(...ups) <= 4, `cursor moves: ${ups.join(', ')}`);
  });

  test('quiet writes nothing; rawjson writes JSON lines', async () => {
    const q = capture();
    const quiet = createPushProgress('quiet', q.out, { target: 't' });
    quiet.onProgress(event(d1, 1, 1, 'exists'));
    await quiet.close();
    assert.equal(q.text(), '');
    const r = capture();
    const raw = createPushProgress('rawjson', r.out, { target: 't' });
    raw.onProgress(event(d1, 1, 1, 'exists'));
    await raw.close();
    assert.equal((JSON.parse(r.text()) as { push: PushProgress }).push.blob.state, 'exists');
  });
});

describe('push history', () => {
  const rec = (repository: string, digest: string, at: number, registry = 'reg:5000') => ({
    registry,
    repository,
    digest,
    at,
  });

  test('mount sources per blob: the repositories whose images had it, newest first; not the target, same registry', async () => {
    const records = [
      rec('a', d2, 1),
      rec('b', d1, 2),
      rec('c', d2, 3),
      rec('target', d1, 4),
      rec('d', d1, 5, 'other:1'),
      rec('e', 'sha256:gone', 6),
    ];
    // image d1 has blobs x and y; image d2 has y and z; the store no longer knows 'sha256:gone'
    const images: Record<string, string[]> = { [d1]: ['x', 'y'], [d2]: ['y', 'z'] };
    const asked: string[] = [];
    const sources = await blobMountSources(records, 'reg:5000', 'target', (image) => {
      asked.push(image);
      const blobs = images[image];
      return blobs ? Promise.resolve(new Set(blobs)) : Promise.reject(new Error('not in the store'));
    });
    // known holders first, then 'e', whose image the store no longer knows (it may hold anything)
    assert.deepEqual(sources('x'), ['b', 'e']);
    assert.deepEqual(sources('y'), ['c', 'b', 'a', 'e']);
    assert.deepEqual(sources('z'), ['c', 'a', 'e']);
    assert.deepEqual(sources('w'), ['e'], "a blob no known image had: only the unknown image's repository");
    assert.deepEqual(asked, ['sha256:gone', d2, d1], 'each image read once');
    const nowhere = await blobMountSources(records, 'nowhere', 'target', () => Promise.resolve(new Set()));
    assert.deepEqual(nowhere('x'), []);
  });

  test('a repeated push replaces its record', () => {
    const once = withPush([rec('a', d1, 1)], rec('a', d1, 2));
    assert.deepEqual(once, [rec('a', d1, 2)]);
  });
});

describe('cog push: target, errors, summary', () => {
  test('IMAGE wins over image:, image: is the default, neither is an error naming image', () => {
    const config = (image: string | null) => ({ image, configFile: '/p/cog.yaml' });
    assert.equal(pushTarget('r/x', config('r/y')).name, 'r/x');
    assert.equal(pushTarget(undefined, config('r/y')).name, 'r/y');
    assert.equal(pushTarget(undefined, config('r.example/a/y:v2')).ref.tag, 'v2');
    assert.throws(
      () => pushTarget(undefined, config(null)),
      (e: CogError) => /'image' option in cog\.yaml/.test(e.hint ?? ''),
    );
  });

  test('a name that is not a reference, or names a digest, fails saying where it came from', () => {
    const config = (image: string | null) => ({ image, configFile: '/p/cog.yaml' });
    assert.throws(
      () => pushTarget(undefined, config('r.example/Bad/name')),
      (e: CogError) =>
        e.message.startsWith(`'image' in cog.yaml: invalid image reference "r.example/Bad/name"`),
    );
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.throws(
      () => pushTarget(`r.example/a/b:v1@${digest}`, config(null)),
      (e: CogError) =>
        e.message === `cog push IMAGE: cannot push to r.example/a/b:v1@${digest}: it names a digest` &&
        (e.hint ?? '').includes('r.example/a/b:v1'),
    );
    assert.throws(
      () => pushTarget(undefined, config(`r.example/a/b@${digest}`)),
      (e: CogError) =>
        e.message.startsWith(`'image' in cog.yaml: cannot push`) &&
        (e.hint ?? '').includes('r.example/a/b:latest'),
    );
  });

  test("a build's image name says where it came from; a malformed one or a digest fails naming that", () => {
    const config = (image: string | null, model: string | null = null) => ({ image, model });
    assert.equal(imageNameSource('x', config('y'), 'cog.yaml'), '-t');
    assert.equal(imageNameSource(undefined, config('y'), 'other.yaml'), "'image' in other.yaml");
    assert.equal(imageNameSource(undefined, config(null, 'r8.im/a/b'), 'cog.yaml'), "'model' in cog.yaml");
    assert.match(imageNameSource(undefined, config(null), 'cog.yaml'), /project directory's name/);

    assert.equal(imageDestination('r.example/a/b:v1', '-t').tag, 'v1');
    assert.throws(
      () => imageDestination('Bad Name', '-t'),
      (e: CogError) => e.message.startsWith('-t: invalid image reference "Bad Name"'),
    );
    assert.throws(
      () => imageDestination('r.example/UPPER/x', "'image' in cog.yaml"),
      (e: CogError) => e.message.startsWith(`'image' in cog.yaml: invalid image reference`),
    );
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.throws(
      () => imageDestination(`r.example/a/b@${digest}`, '-t'),
      (e: CogError) =>
        e.message.startsWith(`-t: r.example/a/b@${digest} names a digest`) &&
        (e.hint ?? '').includes('r.example/a/b:latest'),
    );
  });

  test('the replicate.com page for r8.im only', () => {
    assert.equal(
      replicateModelUrl(parseReference('r8.im/user/model:v2')),
      'https://replicate.com/user/model',
    );
    assert.equal(replicateModelUrl(parseReference('ghcr.io/user/model')), undefined);
  });

  test('a 401 becomes a cog login hint naming the registry', () => {
    const ref = parseReference('127.0.0.1:5056/u/m:v1');
    const err = new RegistryError('HEAD … answered HTTP 401', {
      status: 401,
      method: 'HEAD',
      url: 'http://x/v2/',
    });
    const anon = explainPushError(err, ref, false) as CogError;
    assert.match(anon.message, /127\.0\.0\.1:5056 requires authentication/);
    assert.match(anon.hint ?? '', /`cog login 127\.0\.0\.1:5056`/);
    const rejected = explainPushError(err, ref, true) as CogError;
    assert.match(rejected.message, /rejected the credentials/);
    const r8 = explainPushError(
      new RegistryError('x', { status: 404, method: 'PUT', url: 'https://r8.im/v2/' }),
      parseReference('r8.im/u/m'),
      true,
    ) as CogError;
    assert.match(r8.message, /unable to find an existing Replicate model at r8\.im\/u\/m/);
    const denied = new RegistryError('x', { status: 403, method: 'GET', url: 'https://r8.im/auth/token' });
    const r8Denied = explainPushError(denied, parseReference('r8.im/u/m'), true) as CogError;
    assert.equal(r8Denied.message, 'r8.im denied pushing to r8.im/u/m');
    assert.match(r8Denied.hint ?? '', /must exist on replicate\.com before its first push/);
    const elsewhere = explainPushError(denied, ref, true) as CogError;
    assert.doesNotMatch(elsewhere.hint ?? '', /replicate/);
    const other = new Error('boom');
    assert.equal(explainPushError(other, ref, false), other);
    const half = explainPushError(err, ref, false, { COG_REGISTRY_USERNAME: 'ci' }) as CogError;
    assert.match(half.hint ?? '', /^COG_REGISTRY_PASSWORD is not set \(the other one is\)/);
  });

  test('the summary counts blobs and bytes', () => {
    assert.equal(
      pushSummary({
        reference: 'r/x:y@sha256:1',
        digest: 'sha256:1',
        mediaType: 'm',
        size: 1,
        blobs: { uploaded: 2, existed: 3, mounted: 1 },
        bytesUploaded: 3 * MiB,
        bytesSent: 3 * MiB,
        resumes: 0,
        restarts: 0,
        seconds: 1.25,
      }),
      'Pushed 6 blobs (2 uploaded, 3 already there, 1 mounted): 3.0 MiB uploaded in 1.3s',
    );
  });
});

describe('retries during a push', () => {
  test('a retry line names the error, the retry number and the wait', async () => {
    const { retryLine } = await import('../../src/cli/retry-line.js');
    const line = retryLine({
      attempt: 2,
      attempts: 5,
      delayMs: 4200,
      error: new Error('read ECONNRESET\nmore'),
    });
    assert.equal(line, 'cog: read ECONNRESET; retrying (2/4) in 4.2s');
  });

  test('plain progress prints notes as lines; tty prints them above the live view and redraws it', async () => {
    const plain = capture();
    const p = createPushProgress('plain', plain.out, { target: 'r/x:1' });
    p.note('cog: retrying (1/4) in 2.0s');
    await p.close();
    assert.equal(plain.text(), 'cog: retrying (1/4) in 2.0s\n');

    const tty = capture();
    const t = createPushProgress('tty', tty.out, { target: 'r/x:1', refreshMs: 0 });
    t.onProgress(event(d1, 10 * MiB, 5 * MiB, 'uploading', 5 * MiB));
    const before = tty.text().length;
    t.note('cog: retrying (1/4) in 2.0s');
    const after = tty.text().slice(before);
    await t.close();
    const esc = String.fromCharCode(27);
    assert.ok(
      new RegExp(`^${esc}\\[\\d+A\r${esc}\\[Jcog: retrying \\(1/4\\) in 2\\.0s\n`).test(after),
      JSON.stringify(after),
    );
    assert.ok(after.includes(shortDigest(d1)), 'the view is drawn again below the note');
  });

  test('the client-wide retry policy hears retries that call sites do not handle themselves', async () => {
    const { withRetry, defaultRetryPolicy } = await import('../../src/registry/index.js');
    const heard: number[] = [];
    let calls = 0;
    const result = await withRetry(
      async () => {
        if (++calls < 3) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        return 'ok';
      },
      {
        policy: {
          ...defaultRetryPolicy,
          initialDelayMs: 1,
          maxDelayMs: 2,
          onRetry: (i) => heard.push(i.attempt),
        },
      },
    );
    assert.equal(result, 'ok');
    assert.deepEqual(heard, [1, 2]);
  });
});
