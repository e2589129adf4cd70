import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { directArgv } from '../src/direct-exec.ts';

describe('directArgv', () => {
  const direct: Array<[string, string[]]> = [
    ['true', ['true']],
    ['python3 main.py --n=3', ['python3', 'main.py', '--n=3']],
    ['go test ./...', ['go', 'test', './...']],
    ['./app', ['./app']],
    ['echo hello from asb', ['echo', 'hello', 'from', 'asb']],
  ];
  for (const [cmd, argv] of direct) it(`runs "${cmd}" without a shell`, () => assert.deepEqual(directArgv(cmd), argv));

  const shell = [
    'echo $HOME',
    'ls *.go',
    'cat a > b',
    'a && b',
    'a | b',
    'cd sub',
    'exit 3',
    'X=1 env',
    "echo 'a b'",
    'echo ~',
    'pwd',
    'kill 1',
    'export A=1',
    'read x',
    'source env.sh',
    'a; b',
    'echo a\nb',
    'echo `id`',
    'ls [ab]',
    'f() { x; }',
  ];
  for (const cmd of shell) it(`keeps bash for ${JSON.stringify(cmd)}`, () => assert.equal(directArgv(cmd), undefined));
});
