// Requests node refuses before any handler sees them (a header block over maxHeaderSize, headers
// that did not arrive within headersTimeout, malformed HTTP) are answered in the server's own
// error format instead of node's empty bodies, so a client learns which limit it hit.
import http from 'node:http';
import type net from 'node:net';

export type ErrorBody = (status: number, message: string) => { contentType: string; text: string };

const STATUS_OF_CODE: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
  ERR_HTTP_HEADERS_TIMEOUT: 408,
};

export function answerClientErrors(
  server: http.Server,
  opts: { maxHeaderBytes: number; headersTimeoutMs: number; headerHint?: string; timeoutHint?: string },
  body: ErrorBody,
): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    // The same test node's default handler makes: nothing can be written once a response began.
    const inProgress = (socket as net.Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || !socket.writable || inProgress) {
      socket.destroy();
      return;
    }
    const status = STATUS_OF_CODE[err.code ?? ''] ?? 400;
    const message =
      status === 431
        ? `request headers exceed the limit of ${opts.maxHeaderBytes} bytes${opts.headerHint ? ` (${opts.headerHint})` : ''}`
        : status === 408
          ? `request headers did not arrive within ${opts.headersTimeoutMs} ms${opts.timeoutHint ? ` (${opts.timeoutHint})` : ''}`
          : `malformed HTTP request (${err.code ?? err.message})`;
    const b = body(status, message);
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: ${b.contentType}\r\ncontent-length: ${Buffer.byteLength(b.text)}\r\nconnection: close\r\n\r\n${b.text}`,
    );
    setTimeout(() => socket.destroy(), 1_000).unref();
  });
}
