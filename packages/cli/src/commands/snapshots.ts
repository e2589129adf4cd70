// asb suspend / resume / reset / snapshot ls|create|rm: memory snapshots on the local engine.
import { Sandbox, Snapshots, Objects, type SnapshotInfo } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { age, formatTable, print } from '../output.ts';
import { withProgress } from '../progress.ts';

const HEADERS = ['id', 'sandbox', 'template', 'reason', 'size', 'age'];
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)}M`;
const row = (s: SnapshotInfo) => [
  s.id,
  s.sandbox,
  s.template ?? '<none>',
  s.reason,
  s.sizeBytes === undefined ? '<unknown>' : mb(s.sizeBytes),
  age(s.createdAt),
];

export async function suspendCommand(ctx: Ctx, id: string, flags: { snapshot?: boolean }): Promise<number> {
  const sb = await Sandbox.connect(id, { ...ctx.conn, waitReadyMs: 0 });
  const res = await withProgress(
    `suspending ${id}${flags.snapshot ? ' (taking a memory snapshot)' : ''}`,
    sb.suspend({ snapshot: flags.snapshot }),
    { quiet: ctx.quiet },
  );
  print(
    ctx.format === 'table' ? 'name' : ctx.format,
    res,
    () => '',
    () => (res.snapshotId ? `sandbox/${id} suspended, snapshot ${res.snapshotId}` : `sandbox/${id} suspended`),
  );
  return 0;
}

export async function resumeCommand(ctx: Ctx, id: string, flags: { discardSnapshot?: boolean }): Promise<number> {
  const sb = await Sandbox.connect(id, { ...ctx.conn, waitReadyMs: 0 });
  const res = await withProgress(`resuming ${id}`, sb.resume({ discardSnapshot: flags.discardSnapshot }), {
    quiet: ctx.quiet,
  });
  print(
    ctx.format === 'table' ? 'name' : ctx.format,
    res,
    () => '',
    () =>
      res.restoredFromSnapshot
        ? `sandbox/${id} resumed from snapshot ${res.snapshotId}`
        : `sandbox/${id} resumed (fresh processes, files kept)`,
  );
  return 0;
}

export async function resetCommand(ctx: Ctx, id: string): Promise<number> {
  const sb = await Sandbox.connect(id, { ...ctx.conn, waitReadyMs: 0 });
  const info = await withProgress(`resetting ${id}`, sb.reset(), { quiet: ctx.quiet });
  print(
    ctx.format === 'table' ? 'name' : ctx.format,
    info,
    () => '',
    () => `sandbox/${id} reset${info.restoredFrom ? ` (from golden snapshot ${info.restoredFrom})` : ''}`,
  );
  return 0;
}

export async function snapshotLsCommand(ctx: Ctx, sandbox: string | undefined): Promise<number> {
  const target = sandbox ? { id: sandbox, namespace: ctx.conn.namespace ?? 'default' } : undefined;
  const items = (await new Snapshots(ctx.conn, target).list()).map((s) => s.info);
  print(
    ctx.format,
    { items },
    () => (items.length ? formatTable(HEADERS, items.map(row)) : 'No snapshots.'),
    () => items.map((s) => s.id).join('\n'),
  );
  return 0;
}

export async function snapshotCreateCommand(ctx: Ctx, sandbox: string, flags: { golden?: boolean }): Promise<number> {
  const sb = await Sandbox.connect(sandbox, { ...ctx.conn, waitReadyMs: 0 });
  const snap = await withProgress(`snapshotting ${sandbox}`, sb.snapshots.create(), { quiet: ctx.quiet });
  if (flags.golden) {
    const template = snap.info.template;
    if (!template)
      throw new Error(
        `sandbox "${sandbox}" was not made from a template: its snapshot cannot be a template's golden snapshot`,
      );
    await new Objects(ctx.conn).patch('SandboxTemplate', template, {
      metadata: { annotations: { 'sandbox.asb.dev/golden-snapshot': snap.id } },
    });
    if (!ctx.quiet) process.stderr.write(`new sandboxes of template ${template} now start from ${snap.id}\n`);
  }
  print(
    ctx.format,
    snap.info,
    () => formatTable(HEADERS, [row(snap.info)]),
    () => snap.id,
  );
  return 0;
}

export async function snapshotRmCommand(ctx: Ctx, ids: string[]): Promise<number> {
  const snaps = new Snapshots(ctx.conn);
  for (const id of ids) {
    await (await snaps.get(id)).delete();
    process.stdout.write(`snapshot/${id} deleted\n`);
  }
  return 0;
}
