// asb rm ID...: delete sandboxes and their workspaces.
import { Sandbox, NotFoundError } from '@asb/sdk';
import type { Ctx } from '../context.ts';

export async function rmCommand(ctx: Ctx, ids: string[]): Promise<number> {
  if (ids.length === 0) throw new Error('asb rm: name at least one sandbox (asb ls lists them)');
  let code = 0;
  for (const id of ids) {
    try {
      // No wait for readiness: a Failed or suspended sandbox is deleted as it is.
      const sb = await Sandbox.connect(id, { ...ctx.conn, waitReadyMs: 0 });
      await sb.kill();
      process.stdout.write(`sandbox/${id} deleted\n`);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      process.stderr.write(`asb: ${err.message}\n`);
      code = 1;
    }
  }
  return code;
}
