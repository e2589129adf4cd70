// A command's output on the client: bytes written to a sink as they arrive, text given to
// callbacks, and a bounded part kept for the result. A command can print without end (`yes`, a
// 2 GB file cat'ed), so nothing here grows with the output: the result keeps a head and a tail,
// and what went to a sink or a callback is not kept at all.
import { StringDecoder } from 'node:string_decoder';
import { ExecEvent } from '@asb/runtime/replies';
import { SandboxError } from './errors.ts';

/** The default of `maxOutputChars`: what a result keeps of stdout and of stderr, each. */
export const DEFAULT_MAX_OUTPUT_CHARS = 16 * 1024 * 1024;

/** The longest NDJSON line taken from the agent. Its events carry one pipe read (64 KiB) of
 *  output, at most ~384 KiB as JSON; a longer line is not an agent's, and is refused rather than
 *  buffered. */
const MAX_EVENT_LINE_BYTES = 8 * 1024 * 1024;

/** Where output bytes go: process.stdout, a file stream, a socket. Not ended by the SDK. */
export type OutputSink = NodeJS.WritableStream;

/** Keeps at most `maxChars` characters of a stream: all of it while it fits, then its first and
 *  last halves, with the cut marked in the middle (`… [truncated: N characters omitted of M] …`). */
export class OutputKeeper {
  private head = '';
  private tail: string[] = [];
  private tailChars = 0;
  private total = 0;
  private readonly headMax: number;
  private readonly tailMax: number;

  constructor(readonly maxChars: number) {
    this.headMax = Math.max(0, Math.floor(maxChars / 2));
    this.tailMax = Math.max(0, maxChars - this.headMax);
  }

  push(text: string): void {
    this.total += text.length;
    if (this.head.length < this.headMax) {
      const room = this.headMax - this.head.length;
      this.head += text.slice(0, room);
      text = text.slice(room);
    }
    if (!text || this.tailMax === 0) return;
    this.tail.push(text);
    this.tailChars += text.length;
    // Whole chunks go from the front while the rest still holds tailMax characters.
    while (this.tail.length > 1 && this.tailChars - this.tail[0]!.length >= this.tailMax)
      this.tailChars -= this.tail.shift()!.length;
  }

  result(): { text: string; truncated: boolean } {
    if (this.total <= this.maxChars) return { text: this.head + this.tail.join(''), truncated: false };
    if (this.maxChars <= 0) return { text: '', truncated: true };
    const tail = this.headMax > 0 ? this.tail.join('').slice(-this.headMax) : '';
    const cut = this.total - this.head.length - tail.length;
    return {
      text: `${this.head}\n… [truncated: ${cut} characters omitted of ${this.total}] …\n${tail}`,
      truncated: true,
    };
  }
}

/** One output stream of a command (stdout or stderr): to its sink as bytes, with backpressure;
 *  to its callback and keeper as text. */
export class OutputChannel {
  private readonly keeper: OutputKeeper;
  private decoder: StringDecoder | undefined;
  private sinkError: Error | undefined;
  private readonly onSinkError = (err: Error) => {
    this.sinkError ??= err;
  };

  constructor(
    maxChars: number,
    private readonly onText?: (text: string) => void,
    private readonly sink?: OutputSink,
  ) {
    this.keeper = new OutputKeeper(maxChars);
    // A closed pipe (`asb exec … | head`) is an 'error' event on the sink: it ends the command
    // instead of crashing the process for want of a listener.
    sink?.on('error', this.onSinkError);
  }

  private get wantsText(): boolean {
    return this.keeper.maxChars > 0 || this.onText !== undefined;
  }

  async take(ev: { data: string; encoding?: 'base64' }): Promise<void> {
    let text: string | undefined;
    if (ev.encoding === 'base64') {
      const bytes = Buffer.from(ev.data, 'base64');
      if (this.sink) await this.write(bytes);
      if (this.wantsText) text = (this.decoder ??= new StringDecoder('utf8')).write(bytes);
    } else {
      text = ev.data;
      if (this.sink) await this.write(Buffer.from(text));
    }
    if (text) this.text(text);
  }

  /** The end of the stream: what it kept. */
  end(): { text: string; truncated: boolean } {
    const rest = this.decoder?.end();
    if (rest) this.text(rest);
    return this.keeper.result();
  }

  /** Stops listening to the sink (the run is over, or failed). */
  detach(): void {
    this.sink?.off('error', this.onSinkError);
  }

  private text(text: string): void {
    this.keeper.push(text);
    this.onText?.(text);
  }

  private async write(bytes: Uint8Array): Promise<void> {
    const sink = this.sink!;
    if (this.sinkError) throw this.sinkError;
    if (sink.write(bytes)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        sink.off('drain', done);
        sink.off('close', done);
        sink.off('error', done);
        resolve();
      };
      sink.once('drain', done);
      sink.once('close', done);
      sink.once('error', done);
    });
    // Read again: the wait above may have set it (the narrowing before the wait does not hold).
    const failed = this.sinkError as Error | undefined;
    if (failed) throw failed;
  }
}

/** The events of an NDJSON body as they arrive. Lines are split as bytes, so a line costs its own
 *  length once, however many chunks it came in. */
export async function* ndjsonEvents(body: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<ExecEvent> {
  let parts: Uint8Array[] = [];
  let partBytes = 0;
  for await (const chunk of body) {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      const line = partBytes ? Buffer.concat([...parts, piece]) : piece;
      parts = [];
      partBytes = 0;
      start = nl + 1;
      const ev = parseEvent(line, what);
      if (ev) yield ev;
    }
    if (start < chunk.length) {
      partBytes += chunk.length - start;
      if (partBytes > MAX_EVENT_LINE_BYTES)
        throw new SandboxError(
          `${what}: the sandbox sent an output event longer than ${MAX_EVENT_LINE_BYTES} bytes; it is not a runtime agent's`,
        );
      parts.push(chunk.subarray(start));
    }
  }
  const ev = partBytes ? parseEvent(Buffer.concat(parts), what) : undefined;
  if (ev) yield ev;
}

function parseEvent(line: Uint8Array, what: string): ExecEvent | undefined {
  const text = Buffer.from(line.buffer, line.byteOffset, line.byteLength).toString('utf8');
  if (!text.trim()) return undefined;
  let raw: { type?: unknown; data?: unknown };
  try {
    raw = JSON.parse(text) as typeof raw;
  } catch {
    throw new SandboxError(`${what}: the sandbox sent output that is not NDJSON: ${text.slice(0, 200)}`);
  }
  if ((raw?.type === 'stdout' || raw?.type === 'stderr') && typeof raw.data !== 'string') {
    throw new SandboxError(`${what}: the sandbox sent an output event without data: ${text.slice(0, 200)}`);
  }
  // Parsed, not cast: the sandbox is the untrusted side.
  const ev = ExecEvent.safeParse(raw);
  if (!ev.success) {
    const issue = ev.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    const said = `${where}${issue?.message}`;
    throw new SandboxError(`${what}: the sandbox sent a malformed output event (${said}): ${text.slice(0, 200)}`);
  }
  return ev.data;
}
