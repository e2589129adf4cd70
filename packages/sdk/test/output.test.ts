import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { OutputChannel, OutputKeeper, ndjsonEvents } from '../src/output.ts';
import { SandboxError } from '../src/errors.ts';

const kept = (max: number, chunks: string[]) => {
  const k = new OutputKeeper(max);
  for (const c of chunks) k.push(c);
  return k.result();
};

describe('OutputKeeper', () => {
  const cases: Array<[string, number, string[], { text: string; truncated: boolean }]> = [
    ['keeps output that fits whole', 10, ['abc', 'def'], { text: 'abcdef', truncated: false }],
    ['keeps output exactly at the cap whole', 6, ['abc', 'def'], { text: 'abcdef', truncated: false }],
    [
      'keeps the head and the tail of longer output and marks the cut',
      4,
      ['abc', 'def', 'ghij'],
      { text: 'ab\n… [truncated: 6 characters omitted of 10] …\nij', truncated: true },
    ],
    [
      'cuts inside one chunk as across chunks',
      4,
      ['abcdefghij'],
      { text: 'ab\n… [truncated: 6 characters omitted of 10] …\nij', truncated: true },
    ],
    [
      "keeps an odd cap's extra character only while the output fits",
      5,
      ['abcdefghij'],
      { text: 'ab\n… [truncated: 6 characters omitted of 10] …\nij', truncated: true },
    ],
    ['keeps nothing with a cap of 0, and says output was dropped', 0, ['abc'], { text: '', truncated: true }],
    ['is empty and whole with no output', 0, [], { text: '', truncated: false }],
  ];
  for (const [name, max, chunks, expected] of cases) it(name, () => assert.deepEqual(kept(max, chunks), expected));

  it('holds about its cap, not the output, however much is pushed', () => {
    const k = new OutputKeeper(1000);
    const chunk = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 20_000; i++) k.push(chunk); // 1.3 G characters: more than a string can hold
    const r = k.result();
    assert.equal(r.truncated, true);
    assert.match(r.text, /truncated: 1310719000 characters omitted of 1310720000/);
    assert.ok(r.text.length < 1100);
  });
});

async function* chunksOf(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

describe('ndjsonEvents', () => {
  it("yields one event per line, whatever the chunks' boundaries", async () => {
    const events = [];
    for await (const ev of ndjsonEvents(
      chunksOf(
        '{"type":"std',
        'out","data":"a\\n"}\n{"type":"stderr","data":"é"}\n\n{"type":"exit","exitCode":0,',
        '"signal":null,"timedOut":false,"durationMs":1}',
      ),
      'test',
    ))
      events.push(ev);
    assert.deepEqual(
      events.map((e) => e.type),
      ['stdout', 'stderr', 'exit'],
    );
    assert.deepEqual(events[1], { type: 'stderr', data: 'é' });
  });

  it('refuses a line longer than any agent sends, instead of buffering it', async () => {
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (;;) yield Buffer.alloc(1024 * 1024, 0x61);
    }
    await assert.rejects(
      async () => {
        for await (const _ of ndjsonEvents(endless(), 'run x')) {
          /* none */
        }
      },
      (err: unknown) => {
        assert.ok(err instanceof SandboxError);
        assert.match(err.message, /^run x: the sandbox sent an output event longer than/);
        return true;
      },
    );
  });

  it('refuses lines that are not JSON events', async () => {
    await assert.rejects(async () => {
      for await (const _ of ndjsonEvents(chunksOf('not json\n'), 'run x')) {
        /* none */
      }
    }, /not NDJSON/);
    await assert.rejects(async () => {
      for await (const _ of ndjsonEvents(chunksOf('{"type":"stdout"}\n'), 'run x')) {
        /* none */
      }
    }, /without data/);
  });
});

describe('OutputChannel', () => {
  it('writes base64 events to its sink as the exact bytes and keeps their text', async () => {
    const sink = new PassThrough();
    const got: Buffer[] = [];
    sink.on('data', (c: Buffer) => got.push(c));
    const texts: string[] = [];
    const ch = new OutputChannel(100, (t) => texts.push(t), sink);
    const bytes = Buffer.from([0xff, 0x00, 0xe2, 0x82, 0xac]); // not UTF-8, a NUL, then € split below
    await ch.take({ data: bytes.subarray(0, 3).toString('base64'), encoding: 'base64' });
    await ch.take({ data: bytes.subarray(3).toString('base64'), encoding: 'base64' });
    await ch.take({ data: 'text' });
    assert.deepEqual(Buffer.concat(got), Buffer.concat([bytes, Buffer.from('text')]));
    assert.deepEqual(ch.end(), { text: '\uFFFD\u0000€text', truncated: false });
    assert.deepEqual(texts, ['\uFFFD\u0000', '€', 'text'], 'a character split across events arrives whole');
  });

  it('waits while its sink is full', async () => {
    let release!: () => void;
    const sink = new Writable({
      highWaterMark: 4,
      write(_c, _e, cb) {
        release = cb;
      },
    });
    const ch = new OutputChannel(0, undefined, sink);
    let done = false;
    const p = ch.take({ data: Buffer.from('12345678').toString('base64'), encoding: 'base64' }).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(done, false, 'held back until the sink drains');
    release();
    await p;
    assert.equal(done, true);
  });

  it("fails with the sink's error (a closed pipe) instead of leaving it unhandled", async () => {
    const sink = new Writable({
      write(_c, _e, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const ch = new OutputChannel(0, undefined, sink);
    await ch.take({ data: 'first' }).catch(() => undefined);
    await new Promise((r) => setImmediate(r));
    await assert.rejects(ch.take({ data: 'second' }), { code: 'EPIPE' });
    ch.detach();
  });
});
