// asb url / asb port: a server listening in a sandbox, reached from the host through the engine
// (a preview URL for a browser, or upstream's router headers).
import { InvalidError, Sandbox, type ExposedPort } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { formatTable, print } from '../output.ts';

function portArg(text: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535)
    throw new InvalidError(`"${text}" is not a TCP port (1-65535)`);
  return port;
}

/** asb url SANDBOX PORT: exposes the port and prints the URL a browser opens it with. */
export async function urlCommand(ctx: Ctx, id: string, portText: string): Promise<number> {
  const port = portArg(portText);
  const sb = await Sandbox.connect(id, { ...ctx.conn, waitReadyMs: 0 });
  const exposed = await sb.exposePort(port);
  print(
    ctx.format === 'table' ? 'name' : ctx.format,
    exposed,
    () => '',
    () => exposed.url ?? '',
  );
  return 0;
}

/** asb port SANDBOX [PORT] [--close]: lists the exposed ports, exposes one, or takes one back. */
export async function portCommand(
  ctx: Ctx,
  id: string,
  portText: string | undefined,
  flags: { close?: boolean },
): Promise<number> {
  const sb = await Sandbox.connect(id, { ...ctx.conn, waitReadyMs: 0 });
  if (portText !== undefined && flags.close) {
    await sb.unexposePort(portArg(portText));
    if (!ctx.quiet) process.stderr.write(`port ${portText} of sandbox/${id} closed\n`);
    return 0;
  }
  if (flags.close) throw new InvalidError('--close needs the port to close');
  const items: ExposedPort[] = portText === undefined ? await sb.ports() : [await sb.exposePort(portArg(portText))];
  print(
    ctx.format,
    { items },
    () =>
      formatTable(
        ['port', 'url'],
        items.map((p) => [String(p.port), p.url ?? '(runtime API: the SDK)']),
      ),
    () => items.map((p) => String(p.port)).join('\n'),
  );
  return 0;
}
