// npm run bench:ports: a server in a sandbox reached from the host through the engine (exposed
// ports: the agent's tunnel to the sandbox's loopback), against the runtime API's own round trip
// in the same sandbox (the floor: the same engine, the same agent connection, no tunnel):
//   an HTTP request by the router headers, by a preview URL (its cookie), on a kept-alive
//   connection to the engine; a WebSocket message's round trip; a 100 MB download (MB/s).
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import WebSocket from 'ws';
import { Engine } from '@asb/engine';
import { Sandbox } from '@asb/sdk';
import { percentile, table } from './stats.ts';

const N = Number(process.env.BENCH_PORTS_N ?? 300);
const DOWNLOAD_MB = Number(process.env.BENCH_PORTS_DOWNLOAD_MB ?? 100);
const ms = (n: number) => `${n.toFixed(2)} ms`;

// The sandbox's server: GET /small (2 bytes), GET /big (DOWNLOAD_MB MiB), and a WebSocket echo.
const SERVER = String.raw`
import base64, hashlib, struct, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
CHUNK = b'x' * (1 << 20)
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def do_GET(self):
        if self.headers.get('upgrade', '').lower() == 'websocket':
            key = self.headers['sec-websocket-key']
            accept = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
            self.wfile.write(('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n' % accept).encode())
            self.wfile.flush()
            while True:
                h = self.rfile.read(2)
                if len(h) < 2: return
                n = h[1] & 127
                mask = self.rfile.read(4)
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
                if h[0] & 15 == 8: return
                self.wfile.write(bytes([0x81, len(data)]) + data)
                self.wfile.flush()
        if self.path == '/big':
            mb = int(sys.argv[2])
            self.send_response(200)
            self.send_header('content-length', str(mb << 20))
            self.end_headers()
            for _ in range(mb): self.wfile.write(CHUNK)
            return
        self.send_response(200)
        self.send_header('content-length', '2')
        self.end_headers()
        self.wfile.write(b'ok')
ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
`;

function get(
  agent: http.Agent,
  port: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      })
      .on('error', reject);
  });
}

async function timed(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 20; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'asb-bench-ports-'));
  const engine = new Engine({ home, port: 0, hostImages: true }, pino({ level: process.env.ASB_LOG_LEVEL ?? 'warn' }));
  await engine.start();
  const conn = { url: engine.url, token: engine.bearerToken };
  const enginePort = new URL(engine.url).port;
  const rows: string[][] = [];
  const row = (measure: string, values: number[]) =>
    rows.push([measure, String(values.length), ms(percentile(values, 50)), ms(percentile(values, 95))]);
  try {
    const sb = await Sandbox.create(conn);
    await sb.files.write('server.py', SERVER);
    await sb.commands.start(`python3 server.py 3000 ${DOWNLOAD_MB}`);
    const auth = { authorization: `Bearer ${conn.token}`, 'x-sandbox-id': sb.id };
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (
      let i = 0;
      i < 100 && (await get(keepAlive, enginePort, '/small', { ...auth, 'x-sandbox-port': '3000' })).status !== 200;
    )
      await new Promise((r) => setTimeout(r, 100 + 0 * i++));
    const url = new URL(await sb.getUrl(3000));
    const first = await new Promise<http.IncomingMessage>((resolve) =>
      http.get(
        { host: '127.0.0.1', port: enginePort, path: url.pathname + url.search, headers: { host: url.host } },
        resolve,
      ),
    );
    first.resume();
    const cookie = String(first.headers['set-cookie']).split(';')[0]!;

    row(
      'floor: the runtime API, GET / (engine → agent, no tunnel)',
      await timed(N, () => get(keepAlive, enginePort, '/', auth)),
    );
    row(
      'GET of 2 bytes, router headers (X-Sandbox-Port)',
      await timed(N, () => get(keepAlive, enginePort, '/small', { ...auth, 'x-sandbox-port': '3000' })),
    );
    row(
      'GET of 2 bytes, preview URL (cookie)',
      await timed(N, () => get(keepAlive, enginePort, '/small', { host: url.host, cookie })),
    );
    const ws = new WebSocket(`ws://127.0.0.1:${enginePort}/ws`, { headers: { host: url.host, cookie } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    row(
      'WebSocket message round trip (preview URL)',
      await timed(
        N,
        () =>
          new Promise<void>((resolve) => {
            ws.once('message', () => resolve());
            ws.send('ping');
          }),
      ),
    );
    ws.close();
    const downloads: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await get(keepAlive, enginePort, '/big', { ...auth, 'x-sandbox-port': '3000' });
      if (r.bytes !== DOWNLOAD_MB << 20) throw new Error(`download: ${r.bytes} bytes`);
      downloads.push(DOWNLOAD_MB / ((performance.now() - t0) / 1000));
    }
    rows.push([
      `download of ${DOWNLOAD_MB} MiB through the tunnel (MB/s)`,
      '3',
      percentile(downloads, 50).toFixed(1),
      '',
    ]);
    // Floors: the same bytes as a file through the runtime API (the same agent connection, no
    // tunnel), and the same download inside the sandbox (its own loopback, no engine).
    await sb.run(`head -c ${DOWNLOAD_MB << 20} /dev/zero > big.bin`);
    const files: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await get(keepAlive, enginePort, '/v1/files/big.bin', auth);
      if (r.bytes !== DOWNLOAD_MB << 20) throw new Error(`file download: ${r.bytes} bytes`);
      files.push(DOWNLOAD_MB / ((performance.now() - t0) / 1000));
    }
    rows.push([
      `floor: ${DOWNLOAD_MB} MiB as a file through the runtime API (MB/s)`,
      '3',
      percentile(files, 50).toFixed(1),
      '',
    ]);
    const inside = await sb.run(
      `python3 -c "import time, urllib.request as u; t = time.time(); n = len(u.urlopen('http://127.0.0.1:3000/big').read()); print(n / 1048576 / (time.time() - t))"`,
    );
    rows.push([
      `floor: the same download inside the sandbox, its loopback (MB/s)`,
      '1',
      Number(inside.stdout).toFixed(1),
      '',
    ]);
    await sb.run('rm big.bin');
    keepAlive.destroy();
    await sb.kill();
    console.log(`\nexposed ports benchmark — ${new Date().toISOString()}\n`);
    console.log(table(['measure', 'n', 'p50', 'p95'], rows));
  } finally {
    await engine.stop({ deleteAll: true });
    rmSync(home, { recursive: true, force: true });
  }
}

await main();
