// asb logs ID [-f] [-p PROCESS]: what a sandbox's main process (the template's command, as
// `kubectl logs` shows a pod's) or a background process printed; -f follows until it exits.
import { Sandbox, NotFoundError } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { BROKEN_PIPE_EXIT } from './run.ts';

export async function logsCommand(
  ctx: Ctx,
  id: string,
  flags: { follow?: boolean; process?: string },
): Promise<number> {
  const sb = await Sandbox.connect(id, { ...ctx.conn, waitReadyMs: 0 });
  const proc = flags.process ?? 'main';
  try {
    // Streamed, not kept: a process followed for hours prints without end.
    await sb.commands.output(proc, {
      follow: flags.follow,
      stdout: process.stdout,
      stderr: process.stderr,
      maxOutputChars: 0,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return BROKEN_PIPE_EXIT;
    if (err instanceof NotFoundError && proc === 'main') {
      throw new NotFoundError(
        `sandbox "${id}" has no main process: its template runs no command of its own (the runtime images serve commands instead); see \`asb exec\`, or -p ID for a background process`,
        404,
        'NotFound',
      );
    }
    throw err;
  }
  return 0;
}
