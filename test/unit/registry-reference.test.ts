// Image references: Docker Hub defaults, hosts with ports, tags and digests, and clear errors.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CogError } from '../../src/errors.js';
import { apiHost, formatReference, manifestReference, parseReference } from '../../src/registry/reference.js';

const digest = `sha256:${'ab'.repeat(32)}`;

describe('parseReference', () => {
  const valid: [string, string, string, string | undefined, string | undefined][] = [
    ['python', 'docker.io', 'library/python', 'latest', undefined],
    ['python:3.11-slim', 'docker.io', 'library/python', '3.11-slim', undefined],
    ['user/model', 'docker.io', 'user/model', 'latest', undefined],
    ['docker.io/python', 'docker.io', 'library/python', 'latest', undefined],
    ['index.docker.io/user/model:v1', 'docker.io', 'user/model', 'v1', undefined],
    ['registry-1.docker.io/library/ubuntu', 'docker.io', 'library/ubuntu', 'latest', undefined],
    ['r8.im/user/model', 'r8.im', 'user/model', 'latest', undefined],
    ['127.0.0.1:5055/library/python:3.11', '127.0.0.1:5055', 'library/python', '3.11', undefined],
    ['localhost/model', 'localhost', 'model', 'latest', undefined],
    ['localhost:5000/a/b/c:t', 'localhost:5000', 'a/b/c', 't', undefined],
    ['Registry.Example.COM/x', 'registry.example.com', 'x', 'latest', undefined],
    [`ghcr.io/o/r@${digest}`, 'ghcr.io', 'o/r', undefined, digest],
    [`ghcr.io/o/r:v2@${digest}`, 'ghcr.io', 'o/r', 'v2', digest],
    ['my-reg.io/a__b/c.d/e-f--g:T_1.x', 'my-reg.io', 'a__b/c.d/e-f--g', 'T_1.x', undefined],
    ['[::1]:5000/x:y', '[::1]:5000', 'x', 'y', undefined],
  ];
  for (const [input, registry, repository, tag, dig] of valid) {
    test(`${input}`, () => {
      assert.deepEqual(parseReference(input), { registry, repository, tag, digest: dig });
    });
  }

  const invalid: [string, RegExp][] = [
    ['', /it is empty/],
    ['r8.im/User/Model', /must be lower-case/],
    ['r8.im/', /repository name is missing/],
    ['a//b', /empty path component/],
    ['r8.im/a/-b', /"-b" is not a valid repository path component/],
    ['x:has space', /it has a space in it/],
    ['Bad Image', /it has a space in it/],
    ['http://127.0.0.1:5055/a/b:v1', /a reference names no scheme: drop "http:\/\/"/],
    ['x:.dot', /is not a valid tag/],
    [`x:${'t'.repeat(129)}`, /is not a valid tag/],
    ['x@sha256:abc', /is not a digest/],
    [`x@sha256:${'AB'.repeat(32)}`, /64 lower-case hex/],
    ['bad_host.io:port/x', /"bad_host.io:port" is not a valid registry host/],
    ['127.0.0.1:99999/a/b', /"127.0.0.1:99999" is not a valid registry host/],
    ['host:0/a/b', /"host:0" is not a valid registry host/],
    [`r8.im/${'a'.repeat(256)}`, /longer than 255/],
  ];
  for (const [input, message] of invalid) {
    test(`rejects ${JSON.stringify(input.slice(0, 40))}`, () => {
      assert.throws(
        () => parseReference(input),
        (err: unknown) =>
          err instanceof CogError &&
          message.test(err.message) &&
          err.message.includes(`"${input.trim()}"`) &&
          /\[registry\/\]repository/.test(err.hint ?? ''),
      );
    });
  }
});

test('formatReference, manifestReference and apiHost', () => {
  assert.equal(formatReference(parseReference('python')), 'docker.io/library/python:latest');
  assert.equal(formatReference(parseReference(`r8.im/a/b@${digest}`)), `r8.im/a/b@${digest}`);
  assert.equal(manifestReference(parseReference(`r8.im/a/b:t@${digest}`)), digest);
  assert.equal(manifestReference(parseReference('r8.im/a/b:t')), 't');
  assert.equal(apiHost('docker.io'), 'registry-1.docker.io');
  assert.equal(apiHost('127.0.0.1:5055'), '127.0.0.1:5055');
});
