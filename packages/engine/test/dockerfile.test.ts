// The Dockerfile subset asb image build reads: forms, continuations, and refusals with a line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseDockerfile,
  DockerfileError,
  expandVars,
  stageIndex,
  withProtocol,
} from '../src/image-build/dockerfile.ts';

describe('Dockerfile parsing', () => {
  it('reads the exec and shell forms, continuations and comments, ENV and LABEL pairs', () => {
    const { args, stages } = parseDockerfile(`# syntax comment
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
    assert.deepEqual(args, []);
    assert.equal(stages.length, 1);
    const steps = [stages[0]!.from, ...stages[0]!.steps];
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

  it('reads global and stage ARGs, FROM … AS, FROM ${ARG}, COPY --from and --chown', () => {
    const { args, stages } = parseDockerfile(`ARG NODE_IMAGE=node:20.20-bookworm-slim
ARG CC_IMAGE=gcc:12-bookworm
ARG PYTHON_IMAGE="python:3.13-slim-bookworm" UNSET
FROM \${NODE_IMAGE} AS node
FROM $CC_IMAGE as Asb-Spawn
ARG CFLAGS=-O2 LEVEL
COPY packages/runtime/native/asb-spawn.c /src/asb-spawn.c
RUN gcc -static $CFLAGS -o /asb-spawn /src/asb-spawn.c
FROM \${PYTHON_IMAGE}
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --chown=1000:1000 --from=asb-spawn ["/asb-spawn", "/opt/asb/asb-spawn"]
COPY --from=0 /a /b
COPY --from=registry.example/tools:1 /bin/tool /usr/bin/
FROM scratch
COPY --from=2 /opt /opt
`);
    assert.deepEqual(args, [
      { op: 'ARG', line: 1, vars: [['NODE_IMAGE', 'node:20.20-bookworm-slim']] },
      { op: 'ARG', line: 2, vars: [['CC_IMAGE', 'gcc:12-bookworm']] },
      {
        op: 'ARG',
        line: 3,
        vars: [
          ['PYTHON_IMAGE', 'python:3.13-slim-bookworm'],
          ['UNSET', undefined],
        ],
      },
    ]);
    assert.deepEqual(
      stages.map((s) => s.from),
      [
        { op: 'FROM', line: 4, image: '${NODE_IMAGE}', name: 'node' },
        { op: 'FROM', line: 5, image: '$CC_IMAGE', name: 'asb-spawn' }, // names are lowercase, as Docker's
        { op: 'FROM', line: 9, image: '${PYTHON_IMAGE}' },
        { op: 'FROM', line: 14, image: 'scratch' },
      ],
    );
    assert.deepEqual(stages[1]!.steps[0], {
      op: 'ARG',
      line: 6,
      vars: [
        ['CFLAGS', '-O2'],
        ['LEVEL', undefined],
      ],
    });
    assert.deepEqual(stages[2]!.steps, [
      { op: 'COPY', line: 10, sources: ['/usr/local/bin/node'], dest: '/usr/local/bin/node', from: 'node' },
      {
        op: 'COPY',
        line: 11,
        sources: ['/asb-spawn'],
        dest: '/opt/asb/asb-spawn',
        from: 'asb-spawn',
        chown: '1000:1000',
      },
      { op: 'COPY', line: 12, sources: ['/a'], dest: '/b', from: '0' },
      { op: 'COPY', line: 13, sources: ['/bin/tool'], dest: '/usr/bin/', from: 'registry.example/tools:1' },
    ]);
    // A --from names an earlier stage by name (any case) or index; anything else is an image.
    assert.equal(stageIndex(stages, 'ASB-SPAWN', 2), 1);
    assert.equal(stageIndex(stages, '0', 2), 0);
    assert.equal(stageIndex(stages, '2', 2), undefined);
    assert.equal(stageIndex(stages, 'registry.example/tools:1', 2), undefined);
    assert.equal(stageIndex(stages, 'node', 0), undefined, 'only stages before');
    assert.equal(stageIndex(stages, '0', 3, { byIndex: false }), undefined, 'FROM names a stage by name only');
  });

  it('expands $NAME, ${NAME}, ${NAME:-word} and ${NAME:+word}; \\$ and single quotes keep a $', () => {
    const vars = new Map([
      ['A', 'one'],
      ['EMPTY', ''],
    ]);
    assert.equal(expandVars('$A-${A}/${MISSING}.', vars), 'one-one/.');
    assert.equal(expandVars('${EMPTY:-d1} ${MISSING:-d2} ${A:-d3}', vars), 'd1 d2 one');
    assert.equal(expandVars('${A:+set} ${EMPTY:+set}|${MISSING:+$A}', vars), 'set |');
    assert.equal(expandVars('${MISSING:-$A}', vars), 'one');
    assert.equal(expandVars('\\$A costs \\${A}', vars), '$A costs ${A}');
    const { stages } = parseDockerfile(`FROM a\nENV P='$A' Q="\\$A $A" R=$A\n`);
    const env = stages[0]!.steps[0]!;
    assert.equal(env.op, 'ENV');
    assert.deepEqual(
      env.vars.map(([k, v]) => [k, expandVars(v, vars)]),
      [
        ['P', '$A'],
        ['Q', '$A one'],
        ['R', 'one'],
      ],
    );
  });

  it('leaves the protocol of an EXPOSE port named by a variable until it is expanded', () => {
    const expose = parseDockerfile('FROM a\nEXPOSE $PORT 80 ${DNS}\n').stages[0]!.steps[0]!;
    assert.deepEqual(expose, { op: 'EXPOSE', line: 2, ports: ['$PORT', '80/tcp', '${DNS}'] });
    const vars = new Map([
      ['PORT', '8888'],
      ['DNS', '53/udp'],
    ]);
    assert.deepEqual(
      expose.ports.map((p) => withProtocol(expandVars(p, vars))),
      ['8888/tcp', '80/tcp', '53/udp'],
    );
  });

  it('refuses what it does not build, saying which line', () => {
    const refused = (text: string, why: RegExp) =>
      assert.throws(
        () => parseDockerfile(text),
        (err: Error) => err instanceof DockerfileError && why.test(err.message),
      );
    refused('RUN true', /line 1: the Dockerfile must begin with FROM \(only ARG may come before it\)/);
    refused('ARG A=1\nENV B=2\nFROM a', /line 2: the Dockerfile must begin with FROM/);
    refused('ARG A=1', /the Dockerfile must begin with FROM/);
    refused('FROM a AS build\nFROM b AS BUILD', /line 2: FROM: the stage name "build" is taken \(line 1\)/);
    refused('FROM a AS 1st', /line 1: FROM: "1st" is not a stage name/);
    refused('FROM a AS', /line 1: FROM: expected FROM image \[AS name\]/);
    refused('FROM a b c', /line 1: FROM: expected FROM image \[AS name\]/);
    refused('FROM --platform=linux/arm64 a', /line 1: FROM: flags \(--platform\) are not supported/);
    refused('FROM a\nADD x /y', /line 2: ADD is not supported/);
    refused('FROM a\nCOPY --chmod=755 x /y', /line 2: COPY: flags \(--chmod=755\) are not supported/);
    refused('FROM a\nCOPY --link x /y', /line 2: COPY: flags \(--link\) are not supported/);
    refused('FROM a\nCOPY --from= x /y', /line 2: COPY: --from needs a value/);
    refused('FROM a\nCOPY --from=$STAGE x /y', /line 2: COPY: --from=\$STAGE: variables are not expanded/);
    refused('FROM a AS one\nCOPY --from=one x /y', /line 2: COPY: --from=one is this stage/);
    refused('FROM a\nCOPY --from=1 x /y\nFROM b AS later', /line 2: COPY: --from=1 is a later stage/);
    refused('FROM a\nCOPY --from=later x /y\nFROM b AS later', /line 2: COPY: --from=later is a later stage/);
    refused('FROM a\nCOPY *.txt /y/', /wildcards/);
    refused('FROM a\nCOPY --from=0 /x* /y/', /wildcards/);
    refused('FROM a\nRUN --mount=type=cache true', /line 2: RUN: flags/);
    refused('FROM a\nCOPY only-one', /needs a source and a destination/);
    refused('FROM a\nLABEL novalue', /NAME=VALUE/);
    refused('FROM a\nENV A=1 B', /NAME=VALUE/);
    refused('FROM a\nARG', /line 2: ARG: needs arguments/);
    refused('FROM a\nARG =value', /line 2: ARG: expected NAME or NAME=VALUE/);
    refused('FROM a\nWORKDIR', /line 2: WORKDIR: needs arguments/);
    refused('FROM a\nHEALTHCHECK CMD true', /line 2: HEALTHCHECK is not supported/);
  });
});
