// Pure: kubectl-style columns for each kind (upstream's printer columns, plus what a local user
// wants to see), exported so tests check what `asb get` prints without a terminal.
import type { ApiObject } from '@asb/sdk';
import type { Kind } from '@asb/api';
import { age } from '../output.ts';

const cond = (o: ApiObject, type: string) => o.status?.conditions?.find((c) => c.type === type);

export const OBJECT_HEADERS: Record<Kind, string[]> = {
  Sandbox: ['name', 'ready', 'reason', 'mode', 'owner', 'age'],
  SandboxClaim: ['name', 'ready', 'sandbox', 'reason', 'expires', 'age'],
  SandboxWarmPool: ['name', 'ready', 'desired', 'template', 'age'],
  SandboxTemplate: ['name', 'image', 'age'],
};

export function objectRow(kind: Kind, o: ApiObject, now = Date.now()): string[] {
  const a = age(o.metadata.creationTimestamp, now);
  const ready = cond(o, 'Ready');
  switch (kind) {
    case 'Sandbox': {
      const owner = o.metadata.ownerReferences?.find((r) => r.controller);
      const mode =
        (o.spec.operatingMode as string | undefined) ??
        ((o.spec.replicas as number | undefined) === 0 ? 'Suspended' : 'Running');
      return [
        o.metadata.name,
        ready?.status ?? 'Unknown',
        ready?.reason ?? '',
        mode,
        owner ? `${owner.kind}/${owner.name}` : '',
        a,
      ];
    }
    case 'SandboxClaim': {
      const lc = o.spec.lifecycle as { shutdownTime?: string } | undefined;
      const sb = (o.status?.sandbox as { name?: string } | undefined)?.name ?? '';
      const expires = lc?.shutdownTime
        ? Date.parse(lc.shutdownTime) > now
          ? `in ${age(new Date(now - (Date.parse(lc.shutdownTime) - now)).toISOString(), now)}`
          : 'expired'
        : '';
      return [o.metadata.name, ready?.status ?? 'Unknown', sb, ready?.reason ?? '', expires, a];
    }
    case 'SandboxWarmPool':
      return [
        o.metadata.name,
        String((o.status?.readyReplicas as number | undefined) ?? 0),
        String((o.spec.replicas as number | undefined) ?? ''),
        (o.spec.sandboxTemplateRef as { name?: string } | undefined)?.name ?? '',
        a,
      ];
    case 'SandboxTemplate': {
      const containers =
        (o.spec.podTemplate as { spec?: { containers?: Array<{ image?: string }> } } | undefined)?.spec?.containers ??
        [];
      return [o.metadata.name, containers[0]?.image ?? '', a];
    }
  }
}
