// asb get KIND [NAME...] [-l SELECTOR] [-A] [-w]: kubectl get for the four kinds.
import { Objects, resolveKind, type ApiObject } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { formatTable, print } from '../output.ts';
import { OBJECT_HEADERS, objectRow } from './object-rows.ts';

export interface GetFlags {
  selector?: string;
  allNamespaces?: boolean;
  watch?: boolean;
  apiVersion?: string;
}

export async function getCommand(ctx: Ctx, kindWord: string, names: string[], flags: GetFlags): Promise<number> {
  const kind = resolveKind(kindWord);
  const api = new Objects({ ...ctx.conn, version: flags.apiVersion === 'v1alpha1' ? 'v1alpha1' : 'v1beta1' });
  const headers = flags.allNamespaces ? ['namespace', ...OBJECT_HEADERS[kind]] : OBJECT_HEADERS[kind];
  const row = (o: ApiObject) =>
    flags.allNamespaces ? [o.metadata.namespace, ...objectRow(kind, o)] : objectRow(kind, o);
  if (flags.watch) {
    // One line per change, as kubectl get -w prints them (header once).
    let first = true;
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    for await (const ev of api.watch(kind, {
      allNamespaces: flags.allNamespaces,
      labelSelector: flags.selector,
      signal: ac.signal,
    })) {
      if (names.length && !names.includes(ev.object.metadata.name)) continue;
      if (ctx.format !== 'table') {
        print(
          ctx.format,
          ev,
          () => '',
          () => `${kind.toLowerCase()}/${ev.object.metadata.name}`,
        );
        continue;
      }
      const lines = formatTable(
        ['event', ...headers],
        [
          ['', ...headers.map(() => '')],
          [ev.type, ...row(ev.object)],
        ],
      ).split('\n');
      if (first) {
        process.stdout.write(lines[0] + '\n');
        first = false;
      }
      process.stdout.write(lines[2] + '\n');
    }
    return 0;
  }
  const items = names.length
    ? await Promise.all(names.map((n) => api.get(kind, n)))
    : await api.list(kind, { allNamespaces: flags.allNamespaces, labelSelector: flags.selector });
  const data = names.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', items };
  print(
    ctx.format,
    data,
    () =>
      items.length
        ? formatTable(headers, items.map(row))
        : `No ${kind} objects found in ${flags.allNamespaces ? 'any namespace' : `namespace "${ctx.conn.namespace ?? 'default'}"`}.`,
    () => items.map((o) => `${kind.toLowerCase()}/${o.metadata.name}`).join('\n'),
  );
  return 0;
}
