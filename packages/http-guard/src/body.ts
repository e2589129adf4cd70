// Reading a request body into memory with a hard cap, enforced before and while reading: a
// declared Content-Length over the cap is refused without reading a byte, and a chunked body is
// counted as it arrives and refused at the first byte over. Never more than the cap is held.
import type http from 'node:http';

export class BodyTooLargeError extends Error {
  constructor(readonly limitBytes: number, readonly declaredBytes?: number) {
    super(declaredBytes !== undefined
      ? `request body of ${declaredBytes} bytes exceeds the limit of ${limitBytes} bytes`
      : `request body exceeds the limit of ${limitBytes} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** The client went away (or was sent away) before the body was whole. */
export class BodyAbortedError extends Error {
  constructor(cause?: unknown) {
    super('the request body ended before it was complete', { cause });
    this.name = 'BodyAbortedError';
  }
}

/** Content-Length as a number, or undefined when absent (chunked, or no body). */
export function declaredBytes(req: http.IncomingMessage): number | undefined {
  const text = req.headers['content-length'];
  return text === undefined ? undefined : Number(text);
}

/** Whether some of the request's body is still to come from the client. */
export function bodyPending(req: http.IncomingMessage): boolean {
  if (req.complete) return false;
  return req.headers['transfer-encoding'] !== undefined || (declaredBytes(req) ?? 0) > 0;
}

/** The whole body, or BodyTooLargeError / BodyAbortedError. Over the cap, the request is left
 *  paused: the caller answers 413 and closes the connection (refuse.ts) instead of draining it. */
export function readCappedBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = declaredBytes(req);
  if (declared !== undefined && declared > maxBytes) return Promise.reject(new BodyTooLargeError(maxBytes, declared));
  if (req.complete && req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | undefined) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err) reject(err); else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) { req.pause(); finish(new BodyTooLargeError(maxBytes)); return; }
      chunks.push(chunk);
    };
    const onEnd = () => finish(undefined);
    const onError = (err: Error) => finish(new BodyAbortedError(err));
    const onClose = () => finish(new BodyAbortedError());
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
