// The Dockerfile subset asb image build reads: forms, continuations, and refusals with a line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile, DockerfileError } from '../src/image-build/dockerfile.ts';

describe('Dockerfile parsing', () => {
  it('reads the exec and shell forms, continuations and comments, ENV and LABEL pairs', () => {
    const steps = parseDockerfile(`# syntax comment
FROM debian:12

RUN apt-get update \\
# a comment inside is dropped
 && echo done
RUN ["echo", "exec form"]
ENV A=1 B="two words" C='single' D=x\\ y
ENV LEGACY some value here
LABEL org.example.name="demo" version=2
WORKDIR /srv
USER app:app
EXPOSE 8080 53/udp
COPY ["a b.txt", "/dest/"]
COPY src/ other.txt /opt/
ENTRYPOINT python3 -m server
CMD ["--port", "8080"]
`);
    assert.deepEqual(
      steps.map((s) => s.op),
      ['FROM', 'RUN', 'RUN', 'ENV', 'ENV', 'LABEL', 'WORKDIR', 'USER', 'EXPOSE', 'COPY', 'COPY', 'ENTRYPOINT', 'CMD'],
    );
    assert.deepEqual(steps[1], {
      op: 'RUN',
      line: 4,
      argv: ['/bin/sh', '-c', 'apt-get update  && echo done'],
      shell: true,
    });
    assert.deepEqual(steps[2], { op: 'RUN', line: 7, argv: ['echo', 'exec form'], shell: false });
    assert.deepEqual(steps[3], {
      op: 'ENV',
      line: 8,
      vars: [
        ['A', '1'],
        ['B', 'two words'],
        ['C', 'single'],
        ['D', 'x y'],
      ],
    });
    assert.deepEqual(steps[4], { op: 'ENV', line: 9, vars: [['LEGACY', 'some value here']] });
    assert.deepEqual(steps[5], {
      op: 'LABEL',
      line: 10,
      labels: [
        ['org.example.name', 'demo'],
        ['version', '2'],
      ],
    });
    assert.deepEqual(steps[8], { op: 'EXPOSE', line: 13, ports: ['8080/tcp', '53/udp'] });
    assert.deepEqual(steps[9], { op: 'COPY', line: 14, sources: ['a b.txt'], dest: '/dest/' });
    assert.deepEqual(steps[10], { op: 'COPY', line: 15, sources: ['src/', 'other.txt'], dest: '/opt/' });
    assert.deepEqual(steps[11], { op: 'ENTRYPOINT', line: 16, argv: ['/bin/sh', '-c', 'python3 -m server'] });
    assert.deepEqual(steps[12], { op: 'CMD', line: 17, argv: ['--port', '8080'] });
  });

  it('refuses what it does not build, saying which line', () => {
    const refused = (text: string, why: RegExp) =>
      assert.throws(
        () => parseDockerfile(text),
        (err: Error) => err instanceof DockerfileError && why.test(err.message),
      );
    refused('RUN true', /must begin with FROM/);
    refused('FROM a AS build\nFROM b', /line 1: FROM: one stage only/);
    refused('FROM a\nFROM b', /line 2: FROM: one stage only/);
    refused('FROM a\nADD x /y', /line 2: ADD is not supported/);
    refused('FROM a\nCOPY --from=build /x /y', /line 2: COPY: flags \(--from=build\)/);
    refused('FROM a\nCOPY *.txt /y/', /wildcards/);
    refused('FROM a\nRUN --mount=type=cache true', /line 2: RUN: flags/);
    refused('FROM a\nCOPY only-one', /needs a source and a destination/);
    refused('FROM a\nLABEL novalue', /NAME=VALUE/);
    refused('FROM a\nWORKDIR', /line 2: WORKDIR: needs arguments/);
  });
});
