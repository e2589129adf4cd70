import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, UsageError } from '../src/args.ts';

describe('parseArgs', () => {
  const good: Array<[string[], unknown]> = [
    [[], { mode: 'listen', host: '0.0.0.0', port: 8888, main: undefined }],
    [['--fd', '0'], { mode: 'fd', fd: 0, main: undefined }],
    [['fd', '3', 'main', '["python3","app.py"]'], { mode: 'fd', fd: 3, main: ['python3', 'app.py'] }],
    [['--listen', '127.0.0.1:18888'], { mode: 'listen', host: '127.0.0.1', port: 18888, main: undefined }],
    [['--listen', '[::1]:80'], { mode: 'listen', host: '::1', port: 80, main: undefined }],
    [
      ['--main', '["sleep","1"]', '--listen', ':9000'],
      { mode: 'listen', host: '0.0.0.0', port: 9000, main: ['sleep', '1'] },
    ],
  ];
  for (const [words, want] of good)
    it(`reads ${JSON.stringify(words)}`, () => assert.deepEqual(parseArgs(words), want));

  const bad = [
    ['--fd'],
    ['--fd', 'x'],
    ['--fd', '0', '--listen', ':1'],
    ['--listen', 'nohost'],
    ['--listen', ':99999'],
    ['--main', 'python3'],
    ['--main', '[]'],
    ['--main', '[1]'],
    ['--port', '1'],
  ];
  for (const words of bad)
    it(`refuses ${JSON.stringify(words)}`, () => assert.throws(() => parseArgs(words), UsageError));
});
