// The XDG base directories: the variable when set, else its default under $HOME.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { userDir, userDirSetting } from '../../src/user-dirs.js';

test('userDir takes $XDG_*_HOME when set and the spec default under $HOME otherwise', () => {
  const home = { HOME: '/home/u' };
  assert.equal(userDir(home, 'cache'), '/home/u/.cache');
  assert.equal(userDir(home, 'data'), '/home/u/.local/share');
  assert.equal(userDir(home, 'state'), '/home/u/.local/state');
  const set = { ...home, XDG_CACHE_HOME: '/c', XDG_DATA_HOME: '/d', XDG_STATE_HOME: '/s' };
  assert.deepEqual(
    (['cache', 'data', 'state'] as const).map((k) => userDir(set, k)),
    ['/c', '/d', '/s'],
  );
  // an empty variable counts as unset, as the spec says
  assert.equal(userDir({ ...home, XDG_CACHE_HOME: '' }, 'cache'), '/home/u/.cache');
});

test('userDirSetting names the variable a user directory came from, for messages', () => {
  assert.equal(userDirSetting({ HOME: '/home/u', XDG_STATE_HOME: '/s' }, 'state'), 'XDG_STATE_HOME=/s');
  assert.equal(userDirSetting({ XDG_DATA_HOME: '/d' }, 'data'), 'XDG_DATA_HOME=/d');
  assert.equal(userDirSetting({ HOME: '/home/u', XDG_DATA_HOME: '' }, 'data'), undefined);
  assert.equal(userDirSetting({ HOME: '/home/u' }, 'cache'), undefined);
});
