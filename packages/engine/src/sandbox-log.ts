// A sandbox's log file on the host (runsc's output, and the stderr of the sandbox's first
// processes): read by the engine to say why a sandbox failed, and bounded, because code in the
// sandbox can write to it too (its processes run as the agent's user, and `/proc/2/fd/2` is the
// agent's stderr), and it lies outside the sandbox's disk quota.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** A sandbox log past this size is cut to its last LOG_KEEP_BYTES. */
export const MAX_SANDBOX_LOG_BYTES = 8 * 1024 * 1024;
const LOG_KEEP_BYTES = 64 * 1024;

/** The end of `file`, read without reading the rest. */
export function tailOf(file: string, bytes = 2000): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    return readTail(fd, bytes).toString('utf8').trim();
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function readTail(fd: number, bytes: number): Buffer {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(Math.min(bytes, size));
  const n = readSync(fd, buf, 0, buf.length, size - buf.length);
  return buf.subarray(0, n);
}

/**
 * Cuts `file` to its last 64 KiB when it has grown past `maxBytes`; resolves to the bytes dropped.
 * Writers hold it with O_APPEND (the driver opens it so), so they go on at the new end. All of it
 * off the event loop: truncating a file that a sandbox is writing as fast as it can took seconds.
 */
export async function capLog(file: string, maxBytes = MAX_SANDBOX_LOG_BYTES): Promise<number> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, 'r+');
    const { size } = await fh.stat();
    if (size <= maxBytes) return 0;
    const tail = Buffer.alloc(Math.min(LOG_KEEP_BYTES, size));
    const { bytesRead } = await fh.read(tail, 0, tail.length, size - tail.length);
    await fh.truncate(0);
    const dropped = size - bytesRead;
    const note = Buffer.from(
      `[asb: the log reached ${size} bytes; ${dropped} bytes dropped, the last ${bytesRead} kept]\n`,
    );
    await fh.write(Buffer.concat([note, tail.subarray(0, bytesRead)]), 0, undefined, 0);
    return dropped;
  } catch {
    return 0;
  } finally {
    await fh?.close();
  }
}
