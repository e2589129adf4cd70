import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatTable, age, parseFormat } from '../src/output.ts';
import { sandboxRow } from '../src/commands/sandbox-rows.ts';
import { parseCpArg } from '../src/commands/cp.ts';
import { shellQuote, parseEnv } from '../src/commands/run.ts';

describe('cli output', () => {
  it('aligns tables with upper-case headers', () => {
    assert.equal(
      formatTable(
        ['name', 'phase'],
        [
          ['a', 'Running'],
          ['longer-name', 'Failed'],
        ],
      ),
      'NAME          PHASE\na             Running\nlonger-name   Failed',
    );
  });
  it('prints ages as kubectl does', () => {
    const now = Date.parse('2026-01-01T01:00:00Z');
    assert.equal(age('2026-01-01T00:59:30Z', now), '30s');
    assert.equal(age('2026-01-01T00:30:00Z', now), '30m');
    assert.equal(age('2025-12-31T00:00:00Z', now), '25h');
  });
  it('builds a sandbox row', () => {
    const row = sandboxRow(
      {
        id: 'sb',
        name: 'sb',
        namespace: 'default',
        uid: 'u',
        template: 't',
        phase: 'Running',
        ready: true,
        message: '',
        image: 'i',
        createdAt: '2026-01-01T00:00:00Z',
        startupMs: 210,
      },
      Date.parse('2026-01-01T00:00:05Z'),
    );
    assert.deepEqual(row, ['sb', 'default', 't', 'Running', 'True', '210ms', '5s']);
  });
  it('rejects unknown output formats before calling anything', () => {
    assert.throws(() => parseFormat('xml'), /unknown output format/);
    assert.equal(parseFormat(undefined), 'table');
  });
});

describe('cli arguments', () => {
  it('parses cp arguments', () => {
    assert.deepEqual(parseCpArg('sb-1:/app/x.txt'), { id: 'sb-1', path: '/app/x.txt' });
    assert.deepEqual(parseCpArg('./local.txt'), { path: './local.txt' });
    assert.deepEqual(parseCpArg('sb-1:'), { id: 'sb-1', path: '.' });
  });
  it('quotes argv words for bash', () => {
    assert.equal(['echo', 'a b', "it's"].map(shellQuote).join(' '), `echo 'a b' 'it'\\''s'`);
  });
  it('parses --env pairs', () => {
    assert.deepEqual(parseEnv(['A=1', 'B=x=y']), { A: '1', B: 'x=y' });
    assert.throws(() => parseEnv(['nope']), /NAME=VALUE/);
  });
});
