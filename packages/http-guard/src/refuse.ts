// Answering a request without reading (the rest of) its body: 401 before auth, 413 over a cap,
// 408 for a body that stalled. To keep a connection alive, node would read, and discard, all that
// is left of the body: for a 400 MB upload, 400 MB more read for a request already refused, and
// for a body that never ends, forever. Such an answer says "Connection: close" instead, and the
// connection closes once it is written; nothing more of the body is read.
import type http from 'node:http';
import type net from 'node:net';
import { bodyPending } from './body.ts';

export interface Answer {
  status: number;
  contentType: string;
  text: string;
  headers?: Record<string, string>;
}

/** How long a refused connection stays half-open after its answer (see lingerThenClose). */
export const LINGER_MS = 500;

export function answer(req: http.IncomingMessage, res: http.ServerResponse, a: Answer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string | number> = {
    'content-type': a.contentType,
    'content-length': Buffer.byteLength(a.text),
    ...a.headers,
  };
  if (bodyPending(req)) {
    headers.connection = 'close';
    // Takes what is buffered already: the body then counts as being consumed, and node does not
    // drain the rest once answered; with no reader, it stops reading after one buffer.
    while (req.read() !== null) {
      /* discarded */
    }
    lingerThenClose(req.socket);
  }
  res.writeHead(a.status, headers).end(a.text);
}

/** Ends a request whose body stalled: 408 when nothing was answered yet, and the connection closed. */
export function closeStalled(req: http.IncomingMessage, res: http.ServerResponse, a: Answer): void {
  if (res.headersSent || !bodyPending(req)) {
    req.socket.destroy();
    return;
  }
  answer(req, res, a);
  // A client that stalls may not read the answer either: the socket goes in any case.
  setTimeout(() => req.socket.destroy(), 2 * LINGER_MS).unref();
}

/**
 * For a request that is passed on (a proxy): when its answer starts before the client's body has
 * all arrived (the backend answered early: 413, 404), the answer says "Connection: close" and the
 * connection closes once it is written. Otherwise node keeps it, paused mid-body, for as long as
 * the client does; and closing it later, unannounced, would race a client reusing it.
 */
export function closeWhenAnsweredEarly(req: http.IncomingMessage, res: http.ServerResponse): void {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with its own `this`
  const writeHead = res.writeHead;
  res.writeHead = function writeHeadClosingEarly(this: http.ServerResponse, ...args: unknown[]) {
    if (!this.headersSent && bodyPending(req)) {
      this.setHeader('connection', 'close');
      lingerThenClose(req.socket);
    }
    return (writeHead as (...a: unknown[]) => http.ServerResponse).apply(this, args);
  };
}

/**
 * Node ends a "Connection: close" answer with socket.destroySoon(): closing a socket that still
 * has unread data sends a reset, which can reach a client still busy sending its body before it
 * has read the answer (it then sees EPIPE instead of the 401 or 413). As Go's net/http does, the
 * answer is followed by a FIN, and the socket is destroyed a moment later.
 */
function lingerThenClose(socket: net.Socket): void {
  socket.destroySoon = function lingeringDestroySoon(this: net.Socket) {
    this.end();
    setTimeout(() => this.destroy(), LINGER_MS).unref();
  };
}
