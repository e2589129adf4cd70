// asb describe KIND NAME: the object, its conditions and its events, for a human.
import { stringify } from 'yaml';
import { Objects, resolveKind } from '@asb/sdk';
import type { Ctx } from '../context.ts';
import { age, formatTable } from '../output.ts';

export async function describeCommand(ctx: Ctx, kindWord: string, name: string): Promise<number> {
  const kind = resolveKind(kindWord);
  const api = new Objects(ctx.conn);
  const [obj, events] = await Promise.all([api.get(kind, name), api.events(kind, name)]);
  if (ctx.format === 'json' || ctx.format === 'yaml') {
    const data = { object: obj, events };
    process.stdout.write(ctx.format === 'json' ? JSON.stringify(data, null, 2) + '\n' : stringify(data));
    return 0;
  }
  const md = obj.metadata;
  const kv = (m?: Record<string, string>) =>
    m && Object.keys(m).length
      ? Object.entries(m)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n' + ' '.repeat(14))
      : '<none>';
  const owner = md.ownerReferences?.find((r) => r.controller);
  const out = [
    `Name:         ${md.name}`,
    `Namespace:    ${md.namespace}`,
    `Kind:         ${obj.kind} (${obj.apiVersion})`,
    `Labels:       ${kv(md.labels)}`,
    `Annotations:  ${kv(md.annotations)}`,
    `Created:      ${md.creationTimestamp} (${age(md.creationTimestamp)} ago)`,
    ...(owner ? [`Controlled By: ${owner.kind}/${owner.name}`] : []),
    'Spec:',
    indent(stringify(obj.spec).trimEnd()),
  ];
  const { conditions, ...restStatus } = obj.status ?? {};
  if (Object.keys(restStatus).length) out.push('Status:', indent(stringify(restStatus).trimEnd()));
  out.push('Conditions:');
  out.push(
    conditions?.length
      ? indent(
          formatTable(
            ['type', 'status', 'reason', 'message', 'since'],
            conditions.map((c) => [c.type, c.status, c.reason, c.message, age(c.lastTransitionTime)]),
          ),
        )
      : '  <none>',
  );
  out.push('Events:');
  out.push(
    events.length
      ? indent(
          formatTable(
            ['type', 'reason', 'age', 'count', 'message'],
            events.map((e) => [e.type, e.reason, age(e.lastTimestamp), String(e.count), e.message]),
          ),
        )
      : '  <none>',
  );
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

const indent = (s: string) =>
  s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
