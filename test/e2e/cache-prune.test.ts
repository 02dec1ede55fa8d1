// `cog cache du` and `cog cache prune` against the test bed's buildkitd: a step of this run only is listed,
// survives a prune that was not confirmed, and is removed by a confirmed prune filtered to it (the filter
// keeps the other tests' cache).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { BuildkitClient } from '../../src/buildkit/client.js';
import { Session } from '../../src/buildkit/session.js';
import { solve } from '../../src/buildkit/solve.js';
import { image } from '../../src/llb/index.js';
import { exec, execOk } from '../support/exec.js';
import { ensureTestbed, repoRoot, type Testbed } from '../support/testbed.js';

const cog = join(repoRoot, 'bin', 'cog');
let tb: Testbed;

before(async () => {
  tb = await ensureTestbed();
});

interface UsageJson {
  readonly daemon: string;
  readonly records: number;
  readonly bytes: number;
  readonly reclaimableBytes: number;
  readonly kinds: readonly { type: string; records: number; bytes: number }[];
  readonly entries?: readonly { id: string; description: string; size: number; inUse: boolean }[];
}

async function usage(filter: string, verbose = false): Promise<UsageJson> {
  const out = await execOk(
    cog,
    ['cache', 'du', '--json', '--filter', filter, ...(verbose ? ['--verbose'] : [])],
    { env: tb.env },
  );
  return JSON.parse(out.stdout) as UsageJson;
}

test(
  'cog cache du lists a step of this run; prune asks first, then removes only what the filter names',
  { timeout: 300_000 },
  async () => {
    const tag = `cache-prune-${process.pid}-${Date.now().toString(36)}`;
    // 1 MiB of random bytes: a record with a size no other test makes, named by the command
    const command = `head -c 1048576 /dev/urandom > /${tag}`;
    const client = await BuildkitClient.connect(tb.buildkitHost);
    const session = Session.start(client);
    try {
      await solve(client, {
        definition: image('python:3.11-slim').run({ shell: command }).root().marshal().definition,
        session,
      });
    } finally {
      session.close();
      client.close();
    }
    const ours = `description~=${tag}`;

    const before = await usage(ours, true);
    assert.equal(before.daemon, tb.buildkitHost);
    assert.ok(before.records >= 1, `the step's record is listed: ${JSON.stringify(before)}`);
    assert.ok(before.bytes >= 1024 * 1024, `it holds the 1 MiB it wrote: ${before.bytes}`);
    assert.equal(before.reclaimableBytes, before.bytes, 'no build uses it now');
    assert.ok(
      before.entries?.some((e) => e.description.includes(tag)),
      'verbose lists the record itself',
    );
    // the image the step ran on was pulled into the cache too; its records are described by the
    // reference they were first pulled under (another test may have pulled the same layers under
    // another name first), so every pulled record stands for it
    const pulledFilter = 'description~="^pulled from "';
    const pulled = await usage(pulledFilter, true);
    assert.ok(pulled.records >= 1, `pulled images are in the cache: ${JSON.stringify(pulled)}`);
    // buildkitd ends an unquoted value at a space: the hint gives the quoted form
    const spaced = await exec(cog, ['cache', 'du', '--filter', 'description~=^pulled from '], {
      env: tb.env,
    });
    assert.equal(spaced.code, 1, spaced.stderr);
    assert.match(
      spaced.stderr,
      /^hint: a value with spaces is quoted inside the filter: --filter 'description~="\^pulled from"'$/m,
    );

    const table = await execOk(cog, ['cache', 'du', '--filter', ours], { env: tb.env });
    assert.match(table.stdout, /^TYPE\s+RECORDS\s+SIZE\s+RECLAIMABLE$/m);
    assert.match(table.stdout, /^regular\s+\d+\s+[\d.]+ MiB/m);
    assert.match(table.stdout, /Total: [\d.]+ MiB in \d+ records?; reclaimable/);

    // not a terminal and no --force: refused before anything is removed
    const unasked = await exec(cog, ['cache', 'prune', '--filter', ours], { env: tb.env, input: 'y\n' });
    assert.equal(unasked.code, 1, unasked.stderr);
    assert.match(unasked.stderr, /stdin is not a terminal/);
    assert.match(unasked.stderr, /--force/);
    assert.equal((await usage(ours)).records, before.records, 'an unconfirmed prune removes nothing');

    // on a terminal it asks; anything but yes removes nothing (a real pseudo-terminal: util-linux script)
    const declined = await exec('script', ['-qec', `${cog} cache prune --filter ${ours}`, '/dev/null'], {
      env: tb.env,
      input: 'n\n',
    });
    assert.equal(declined.code, 0, declined.stdout + declined.stderr);
    assert.match(
      declined.stdout,
      new RegExp(`This removes all unused build cache matching ${ours} from buildkitd at \\S+ .*\\[y/N\\]`),
    );
    assert.match(declined.stdout, /Nothing was removed\./);
    assert.equal((await usage(ours)).records, before.records, 'a declined prune removes nothing');
    // no answer at all (the terminal's input ends): nothing removed, and the hint says so
    const unanswered = await exec('script', ['-qec', `${cog} cache prune --filter ${ours}`, '/dev/null'], {
      env: tb.env,
      input: '',
    });
    assert.match(unanswered.stdout, /hint: nothing was changed/);
    assert.equal((await usage(ours)).records, before.records, 'an unanswered prune removes nothing');

    // bad flags fail before the daemon is asked
    const badSize = await exec(
      cog,
      ['cache', 'prune', '--force', '--keep-storage', 'lots', '--filter', ours],
      {
        env: tb.env,
      },
    );
    assert.equal(badSize.code, 1);
    assert.match(badSize.stderr, /--keep-storage "lots" is not a size/);
    // an empty --filter beside a real one: refused, not dropped (alone it would have pruned everything)
    for (const command of [['du'], ['prune', '--force']]) {
      const emptyFilter = await exec(cog, ['cache', ...command, '--filter', ours, '--filter', ' '], {
        env: tb.env,
      });
      assert.equal(emptyFilter.code, 1, emptyFilter.stdout + emptyFilter.stderr);
      assert.match(emptyFilter.stderr, /^cog: error: --filter is empty: a filter is FIELD==VALUE/m);
    }
    // written empty (an unset shell variable) is refused too, not read as "keep nothing"
    for (const flag of ['--keep-storage', '--keep-duration']) {
      const empty = await exec(cog, ['cache', 'prune', '--force', flag, '', '--filter', ours], {
        env: tb.env,
      });
      assert.equal(empty.code, 1, empty.stdout + empty.stderr);
      assert.match(empty.stderr, new RegExp(`^cog: error: ${flag} "" is not a (size|duration)$`, 'm'));
    }
    const badFilter = await exec(cog, ['cache', 'du', '--filter', 'description~~x'], { env: tb.env });
    assert.equal(badFilter.code, 1);
    assert.match(badFilter.stderr, /--filter/);
    // a field records do not have: == would match nothing, != everything (a prune of the whole cache)
    for (const command of [['du'], ['prune', '--force']]) {
      const unknown = await exec(cog, ['cache', ...command, '--filter', 'bogus!=x'], { env: tb.env });
      assert.equal(unknown.code, 1, unknown.stderr);
      assert.match(
        unknown.stderr,
        /^cog: error: --filter bogus!=x: build cache records have no field "bogus"$/m,
      );
      assert.match(unknown.stderr, /^hint: filter on id, type, description, inuse/m);
    }
    // every --filter must hold: this record is regular, so it is not also source.local
    const both = await execOk(
      cog,
      ['cache', 'du', '--json', '--filter', ours, '--filter', 'type==source.local'],
      { env: tb.env },
    );
    assert.equal((JSON.parse(both.stdout) as UsageJson).records, 0, both.stdout);
    assert.equal((await usage(ours)).records, before.records, 'refused flags remove nothing');

    // buildx's --filter until=1h is --keep-duration 1h: the record was used just now, so it stays
    const recent = await execOk(
      cog,
      ['cache', 'prune', '--force', '--json', '--filter', ours, '--filter', 'until=1h'],
      { env: tb.env },
    );
    assert.equal((JSON.parse(recent.stdout) as { records: number }).records, 0, recent.stdout);
    assert.equal(
      (await usage(ours)).records,
      before.records,
      'until=1h keeps what was used in the last hour',
    );

    const pruned = await execOk(cog, ['cache', 'prune', '--force', '--json', '--filter', ours], {
      env: tb.env,
    });
    const removed = JSON.parse(pruned.stdout) as { records: number; bytes: number };
    assert.ok(removed.records >= 1, `records removed: ${pruned.stdout}`);
    assert.ok(removed.bytes >= 1024 * 1024, `bytes freed: ${removed.bytes}`);

    const after = await execOk(cog, ['cache', 'du', '--filter', ours], { env: tb.env });
    assert.match(after.stdout, /^No record of the build cache of buildkitd at .* matches --filter /);
    const pulledAfter = new Set((await usage(pulledFilter, true)).entries?.map((e) => e.id));
    const gone = (pulled.entries ?? []).filter((e) => !pulledAfter.has(e.id));
    assert.deepEqual(gone, [], 'the pulled images stay');
  },
);
