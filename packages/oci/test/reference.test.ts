import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidReferenceError, formatReference, isLoopback, parseChallenge, parseReference } from '../src/index.ts';

describe('image references', () => {
  it('normalises as Docker does', () => {
    const cases: Array<[string, string]> = [
      ['python', 'docker.io/library/python:latest'],
      ['python:3.13-slim', 'docker.io/library/python:3.13-slim'],
      ['bitnami/redis:7', 'docker.io/bitnami/redis:7'],
      ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
      [
        'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0',
        'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0',
      ],
      ['ghcr.io/gke-demos/go-runtime-sandbox', 'ghcr.io/gke-demos/go-runtime-sandbox:latest'],
      ['localhost:5000/app', 'localhost:5000/app:latest'],
      ['localhost/app:1', 'localhost/app:1'],
      ['[::1]:5000/team/app:v2', '[::1]:5000/team/app:v2'],
      [`app@sha256:${'a'.repeat(64)}`, `docker.io/library/app@sha256:${'a'.repeat(64)}`],
      [`app:1@sha256:${'b'.repeat(64)}`, `docker.io/library/app:1@sha256:${'b'.repeat(64)}`],
    ];
    for (const [input, full] of cases) assert.equal(formatReference(parseReference(input)), full, input);
    assert.equal(parseReference(`app@sha256:${'a'.repeat(64)}`).tag, undefined, 'a digest alone has no tag');
  });

  it('refuses what is not a reference, saying why', () => {
    const bad: Array<[string, RegExp]> = [
      ['', /empty/],
      ['Python', /not a valid repository name component/],
      ['app:', /not a valid tag/],
      ['app:-x', /not a valid tag/],
      ['app@sha256:abc', /64 lowercase hex/],
      ['app@md5:' + 'a'.repeat(32), /sha256/],
      ['team//app', /not a valid repository name component/],
      ['exa_mple.com/app', /not a valid registry host/],
    ];
    for (const [input, why] of bad)
      assert.throws(
        () => parseReference(input),
        (e: unknown) => e instanceof InvalidReferenceError && why.test(e.message),
        input,
      );
  });

  it('loopback registries are the ones plain HTTP is allowed to without configuration', () => {
    for (const h of ['localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000'])
      assert.equal(isLoopback(h), true, h);
    for (const h of ['docker.io', '10.0.0.1:5000', 'localhost.example.com']) assert.equal(isLoopback(h), false, h);
  });

  it('reads WWW-Authenticate challenges', () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull"',
      ),
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/python:pull',
        },
      },
    );
    assert.deepEqual(parseChallenge('Basic realm="test"'), { scheme: 'basic', params: { realm: 'test' } });
  });
});
