// Mixed requests through one sandbox from many clients at once, each answer checked: what an agent
// driving a sandbox through a long task does. Used by the soak test (CI) and `npm run bench:soak`
// (a million requests). Every client is one keep-alive connection making one request at a time,
// cycling through the kinds, so each kind crosses the engine–agent connection as often as the rest.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

export const KINDS = ['write', 'read', 'exists', 'list', 'execute', 'upload', 'download', 'stream'] as const;
export type Kind = (typeof KINDS)[number];

export interface SoakOptions {
  url: string;
  token: string;
  sandbox: string;
  clients: number;
  /** Requests in all, spread over the clients. */
  requests: number;
  /** The kinds each client cycles through (default: all, in KINDS order). */
  kinds?: readonly Kind[];
  /** Called about once a second. */
  onProgress?: (done: number, errors: number) => void;
}

export interface SoakResult {
  latencies: Record<Kind, number[]>;
  /** Every failed request: a status other than the one expected, a wrong body, a dropped connection. */
  errors: Array<{ kind: Kind; at: number; message: string }>;
  durationMs: number;
}

interface Reply {
  status: number;
  body: Buffer;
}

function send(
  agent: http.Agent,
  base: URL,
  headers: Record<string, string>,
  method: string,
  path: string,
  body?: Buffer | string,
  extra: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: base.hostname, port: base.port, method, path, agent, headers: { ...headers, ...extra } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function expect(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

/** One client's requests: `kind` with the client's own files, its answer checked. */
async function one(
  kind: Kind,
  client: number,
  seq: number,
  agent: http.Agent,
  base: URL,
  headers: Record<string, string>,
  state: { content: Buffer },
): Promise<void> {
  const file = `soak/c${client}.txt`;
  const shown = (r: Reply) => `${r.status} ${r.body.subarray(0, 200).toString()}`;
  switch (kind) {
    case 'write': {
      state.content = randomBytes(256 + (seq % 2048));
      const r = await send(agent, base, headers, 'PUT', `/v1/files/${file}`, state.content);
      expect(r.status === 201 && JSON.parse(r.body.toString()).size === state.content.length, `write: ${shown(r)}`);
      return;
    }
    case 'read': {
      const r = await send(agent, base, headers, 'GET', `/v1/files/${file}`);
      expect(
        r.status === 200 && r.body.equals(state.content),
        `read: ${r.status}, ${r.body.length} bytes where ${state.content.length} were written`,
      );
      return;
    }
    case 'exists': {
      const r = await send(agent, base, headers, 'GET', `/exists/${file}`);
      expect(r.status === 200 && JSON.parse(r.body.toString()).exists === true, `exists: ${shown(r)}`);
      return;
    }
    case 'list': {
      const r = await send(agent, base, headers, 'GET', '/list/soak');
      expect(
        r.status === 200 &&
          (JSON.parse(r.body.toString()) as Array<{ name: string }>).some((e) => e.name === `c${client}.txt`),
        `list: ${shown(r)}`,
      );
      return;
    }
    case 'execute': {
      const r = await send(
        agent,
        base,
        headers,
        'POST',
        '/execute',
        JSON.stringify({ command: `echo ${client}-${seq}` }),
        { 'content-type': 'application/json' },
      );
      const out =
        r.status === 200 ? (JSON.parse(r.body.toString()) as { stdout: string; exit_code: number }) : undefined;
      expect(out?.stdout === `${client}-${seq}\n` && out.exit_code === 0, `execute: ${shown(r)}`);
      return;
    }
    case 'upload': {
      const boundary = `soak${seq}`;
      const payload = Buffer.concat([
        Buffer.from(
          `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="soak/c${client}-up.txt"\r\ncontent-type: application/octet-stream\r\n\r\n`,
        ),
        state.content,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const r = await send(agent, base, headers, 'POST', '/upload', payload, {
        'content-type': `multipart/form-data; boundary=${boundary}`,
      });
      expect(r.status === 200, `upload: ${shown(r)}`);
      return;
    }
    case 'download': {
      const r = await send(agent, base, headers, 'GET', `/download/soak/c${client}-up.txt`);
      expect(
        r.status === 200 && r.body.equals(state.content),
        `download: ${r.status}, ${r.body.length} bytes where ${state.content.length} were uploaded`,
      );
      return;
    }
    case 'stream': {
      const r = await send(
        agent,
        base,
        headers,
        'POST',
        '/v1/exec',
        JSON.stringify({ command: `echo s${client}-${seq}` }),
        { 'content-type': 'application/json' },
      );
      const events =
        r.status === 200
          ? r.body
              .toString()
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l) as { type: string; data?: string; exitCode?: number })
          : [];
      const stdout = events
        .filter((e) => e.type === 'stdout')
        .map((e) => e.data)
        .join('');
      expect(
        stdout === `s${client}-${seq}\n` && events.at(-1)?.type === 'exit' && events.at(-1)?.exitCode === 0,
        `stream: ${shown(r)}`,
      );
      return;
    }
  }
}

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const base = new URL(opts.url);
  const headers = { authorization: `Bearer ${opts.token}`, 'x-sandbox-id': opts.sandbox };
  const kinds = opts.kinds ?? KINDS;
  const latencies = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
  const errors: SoakResult['errors'] = [];
  let next = 0;
  let done = 0;
  const t0 = Date.now();
  const progress = opts.onProgress ? setInterval(() => opts.onProgress!(done, errors.length), 1000) : undefined;
  // Every client's files exist before the mix starts (a read needs a write before it).
  const setup = new http.Agent({ keepAlive: true, maxSockets: 1 });
  await send(setup, base, headers, 'POST', '/v1/mkdir/soak');
  setup.destroy();
  const client = async (id: number) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const state = { content: Buffer.alloc(0) };
    try {
      for (let i = 0; next < opts.requests; i++) {
        const at = next++;
        const kind = kinds[i % kinds.length]!;
        const t = performance.now();
        try {
          await one(kind, id, i, agent, base, headers, state);
          latencies[kind].push(performance.now() - t);
        } catch (err) {
          errors.push({ kind, at, message: (err as Error).message });
        }
        done++;
      }
    } finally {
      agent.destroy();
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.clients }, (_, id) => client(id)));
  } finally {
    if (progress) clearInterval(progress);
  }
  return { latencies, errors, durationMs: Date.now() - t0 };
}
