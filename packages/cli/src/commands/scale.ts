// asb scale KIND NAME --replicas N: a warm pool's size, or a Sandbox's 1 (running) / 0
// (suspended: processes end, files and identity stay).
import { Objects, resolveKind } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { UsageError } from '../output.ts';

export async function scaleCommand(
  ctx: Ctx,
  kindWord: string,
  name: string,
  flags: { replicas: string },
): Promise<number> {
  const kind = resolveKind(kindWord);
  const replicas = Number(flags.replicas);
  if (!Number.isInteger(replicas) || replicas < 0)
    throw new UsageError(`--replicas ${flags.replicas}: a whole number, 0 or more`);
  if (kind === 'Sandbox') {
    if (replicas > 1) throw new UsageError('a Sandbox has 0 (suspended) or 1 (running) replicas');
    // v1alpha1 speaks replicas, as the scale subresource does.
    await new Objects({ ...ctx.conn, version: 'v1alpha1' }).patch(kind, name, { spec: { replicas } });
  } else if (kind === 'SandboxWarmPool') {
    await new Objects(ctx.conn).patch(kind, name, { spec: { replicas } });
  } else {
    throw new UsageError(`${kind} cannot be scaled: scale sandboxes (0 or 1) or sandboxwarmpools`);
  }
  process.stdout.write(`${kind.toLowerCase()}/${name} scaled\n`);
  return 0;
}
