// Reading a request body into memory with a hard cap, enforced before and while reading: a
// declared Content-Length over the cap is refused without reading a byte, and a chunked body is
// counted as it arrives and refused at the first byte over. Never more than the cap is held.
import type http from 'node:http';

export class BodyTooLargeError extends Error {
  constructor(
    readonly limitBytes: number,
    readonly declaredBytes?: number,
  ) {
    super(
      declaredBytes !== undefined
        ? `request body of ${declaredBytes} bytes exceeds the limit of ${limitBytes} bytes`
        : `request body exceeds the limit of ${limitBytes} bytes`,
    );
    this.name = 'BodyTooLargeError';
  }
}

/** The server holds `limitBytes` of request bodies being read already, across all its requests. */
export class BodyBudgetError extends Error {
  constructor(readonly limitBytes: number) {
    super(`the server is reading ${limitBytes} bytes of request bodies at once already, its limit: try again shortly`);
    this.name = 'BodyBudgetError';
  }
}

/**
 * The bytes of request bodies a server holds while reading them, all requests together. The cap
 * per body bounds one request; this bounds many: a thousand clients each sending a body just under
 * the cap, slowly enough to stay under the idle timeout, would otherwise hold a thousand caps.
 */
export class BodyBudget {
  private used = 0;
  constructor(readonly limitBytes: number) {}
  get usedBytes(): number {
    return this.used;
  }
  take(bytes: number): boolean {
    if (this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }
  give(bytes: number): void {
    this.used -= bytes;
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

/** The whole body, or BodyTooLargeError / BodyBudgetError / BodyAbortedError. Over the cap or
 *  the budget, the request is left paused: the caller answers 413 or 503 and closes the
 *  connection (refuse.ts) instead of draining it. The budget is held while the body is read. */
export function readCappedBody(req: http.IncomingMessage, maxBytes: number, budget?: BodyBudget): Promise<Buffer> {
  const declared = declaredBytes(req);
  if (declared !== undefined && declared > maxBytes) return Promise.reject(new BodyTooLargeError(maxBytes, declared));
  if (req.complete && req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let held = 0;
    const finish = (err: Error | undefined) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      budget?.give(held);
      held = 0;
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.pause();
        finish(new BodyTooLargeError(maxBytes));
        return;
      }
      if (budget) {
        if (!budget.take(chunk.length)) {
          req.pause();
          finish(new BodyBudgetError(budget.limitBytes));
          return;
        }
        held += chunk.length;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(undefined);
    const onError = (err: Error) => finish(new BodyAbortedError(err));
    const onClose = () => finish(new BodyAbortedError());
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
