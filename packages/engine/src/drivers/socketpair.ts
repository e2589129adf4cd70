// Node has no socketpair(2); a connected pair of Unix sockets is made by listening on a private
// path, connecting, and accepting. One end becomes the sandbox's fd 0 (read and write), the other
// stays with the engine: a single bidirectional stream, which HTTP/2 needs.
import net from 'node:net';
import { rmSync } from 'node:fs';

export async function socketPair(path: string): Promise<[mine: net.Socket, theirs: net.Socket]> {
  rmSync(path, { force: true });
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  try {
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const mine = net.connect(path);
    await new Promise<void>((resolve, reject) => {
      mine.once('connect', resolve);
      mine.once('error', reject);
    });
    return [mine, await accepted];
  } finally {
    server.close();
    rmSync(path, { force: true });
  }
}

/** A Unix socket listening at `path` for one connection (another process's end of a pair):
 *  `accepted` is ours; close() stops listening and removes the path. */
export async function listenOnce(path: string): Promise<{ accepted: Promise<net.Socket>; close(): void }> {
  rmSync(path, { force: true });
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  return {
    accepted,
    close() {
      server.close();
      rmSync(path, { force: true });
    },
  };
}
