// Run inside the mini internet's network namespace (mini-internet.ts starts it there): a DNS server
// for the test names, and HTTP servers on the test addresses that answer with what they saw
// (their own address, the Host header, the headers, the client's address). Prints "ready" when
// every socket listens. Config: the JSON of MINI_INTERNET (see mini-internet.ts).
import dgram from 'node:dgram';
import http from 'node:http';
import dnsPacket from 'dns-packet';

interface Config {
  dns: string;
  zone: Record<string, string>;
  http: Array<{ address: string; port: number }>;
}
const config = JSON.parse(process.env.MINI_INTERNET!) as Config;

const udp = dgram.createSocket('udp4');
udp.on('message', (msg, rinfo) => {
  const q = dnsPacket.decode(msg);
  const question = q.questions?.[0];
  const name = question?.name.toLowerCase() ?? '';
  const address = config.zone[name];
  const answers =
    address && question?.type === 'A' ? [{ type: 'A' as const, name: question.name, ttl: 5, data: address }] : [];
  const reply = dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (address ? 0 : 3),
    questions: q.questions,
    answers,
  });
  udp.send(reply, rinfo.port, rinfo.address);
});

const servers = config.http.map(
  ({ address, port }) =>
    new Promise<void>((resolve) => {
      const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (req.url?.startsWith('/bytes/')) {
            // A download of N bytes, for throughput.
            const n = Number(req.url.slice('/bytes/'.length));
            res.writeHead(200, { 'content-length': n, 'content-type': 'application/octet-stream' });
            const chunk = Buffer.alloc(Math.min(n, 1 << 20), 120);
            let left = n;
            const pump = () => {
              while (left > 0) {
                const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
                left -= part.length;
                if (!res.write(part)) return void res.once('drain', pump);
              }
              res.end();
            };
            return pump();
          }
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              server: `${address}:${port}`,
              host: req.headers.host,
              path: req.url,
              headers: req.headers,
              client: req.socket.remoteAddress,
              body: Buffer.concat(chunks).toString(),
            }),
          );
        });
      });
      server.listen(port, address, () => resolve());
    }),
);

udp.bind(53, config.dns, () => {
  void Promise.all(servers).then(() => process.stdout.write('ready\n'));
});
