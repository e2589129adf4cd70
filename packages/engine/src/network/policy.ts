// Pure: what a Sandbox may reach, from its template, as upstream's managed NetworkPolicy says on a
// cluster. A Sandbox is governed by the SandboxTemplate of its namespace whose name hashes to its
// pod's `sandbox-template-ref-hash` label (the label the NetworkPolicy selects on there). What no
// template governs, or what an Unmanaged template leaves to NetworkPolicies of the user's own
// (which do not exist on one machine), stays offline: the local engine's default is no network.
import { LABEL_SANDBOX_TEMPLATE_REF_HASH, nameHash, type Sandbox, type SandboxTemplate } from '@asb/api';

/** upstream's default egress (sandboxtemplate_controller.go): the internet, not private ranges
 *  nor link-local (metadata servers). (Sandboxes have no IPv6 route: its half is moot here.) */
export const MANAGED_DEFAULT_EXCEPT = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16'] as const;

export type Protocol = 'tcp' | 'udp' | 'sctp';

/** Destination ports of a rule: a protocol with all its ports, or a port, or a range. */
export interface PortMatch {
  protocol: Protocol;
  port?: number;
  endPort?: number;
}

/** An IPv4 block (cidr minus except). */
export interface IpBlock {
  cidr: string;
  except: string[];
}

/** One egress rule: any of `to` (undefined: anywhere) and any of `ports` (undefined: any port). */
export interface EgressRule {
  to?: IpBlock[];
  ports?: PortMatch[];
}

export type EgressPolicy =
  | { kind: 'offline'; why: string }
  | {
      kind: 'egress';
      /** Where the rules come from, for the log and `asb`'s describe. */
      source: 'managed-default' | 'template';
      template: string;
      rules: EgressRule[];
      /** Parts of the template's rules that cannot match anything on one machine (pod and
       *  namespace selectors, named ports, IPv6 blocks): said in the log, never widened. */
      ignored: string[];
    };

type NetworkPolicySpec = NonNullable<SandboxTemplate['spec']['networkPolicy']>;
type EgressSpec = NonNullable<NetworkPolicySpec['egress']>[number];

/** The template that governs `sb`, among `templates` (those of its namespace). */
export function governingTemplate(sb: Sandbox, templates: readonly SandboxTemplate[]): SandboxTemplate | undefined {
  const hash = sb.spec.podTemplate.metadata?.labels?.[LABEL_SANDBOX_TEMPLATE_REF_HASH];
  if (!hash) return undefined;
  return templates.find((t) => t.metadata.namespace === sb.metadata.namespace && nameHash(t.metadata.name!) === hash);
}

export function egressPolicyOf(sb: Sandbox, templates: readonly SandboxTemplate[]): EgressPolicy {
  const template = governingTemplate(sb, templates);
  if (!template) return { kind: 'offline', why: 'no SandboxTemplate governs it' };
  const name = template.metadata.name!;
  if ((template.spec.networkPolicyManagement ?? 'Managed') === 'Unmanaged') {
    return { kind: 'offline', why: `template ${name} is Unmanaged (no NetworkPolicy of yours exists here)` };
  }
  const np = template.spec.networkPolicy;
  if (!np) {
    return {
      kind: 'egress',
      source: 'managed-default',
      template: name,
      rules: [{ to: [{ cidr: '0.0.0.0/0', except: [...MANAGED_DEFAULT_EXCEPT] }] }],
      ignored: [],
    };
  }
  const ignored: string[] = [];
  const rules = (np.egress ?? []).flatMap((r, i) => ruleOf(r, `egress[${i}]`, ignored));
  if (rules.length === 0) {
    const why = (np.egress ?? []).length === 0 ? 'its egress rules are empty' : 'none of its egress rules can match';
    return { kind: 'offline', why: `template ${name}: ${why} (deny all)` };
  }
  return { kind: 'egress', source: 'template', template: name, rules, ignored };
}

/** One NetworkPolicy egress rule, or nothing when it can match nothing here. */
function ruleOf(r: EgressSpec, at: string, ignored: string[]): EgressRule[] {
  let to: IpBlock[] | undefined;
  if (r.to && r.to.length > 0) {
    to = [];
    r.to.forEach((peer, j) => {
      if (peer.ipBlock && !peer.podSelector && !peer.namespaceSelector) {
        if (peer.ipBlock.cidr.includes(':')) ignored.push(`${at}.to[${j}]: IPv6 (sandboxes have no IPv6 route)`);
        else to!.push({ cidr: peer.ipBlock.cidr, except: (peer.ipBlock.except ?? []).filter((e) => !e.includes(':')) });
      } else {
        ignored.push(`${at}.to[${j}]: pod and namespace selectors select nothing on one machine`);
      }
    });
    if (to.length === 0) return [];
  }
  let ports: PortMatch[] | undefined;
  if (r.ports && r.ports.length > 0) {
    ports = [];
    r.ports.forEach((p, j) => {
      const protocol = (p.protocol ?? 'TCP').toLowerCase() as Protocol;
      if (typeof p.port === 'string') {
        ignored.push(`${at}.ports[${j}]: named port "${p.port}" names no container here`);
        return;
      }
      ports!.push({ protocol, port: p.port, endPort: p.port !== undefined ? p.endPort : undefined });
    });
    if (ports.length === 0) return [];
  }
  return [{ to, ports }];
}

/** What a policy lets through, in a line (logs, describe). */
export function describePolicy(p: EgressPolicy): string {
  if (p.kind === 'offline') return `offline: ${p.why}`;
  if (p.source === 'managed-default')
    return `internet except ${MANAGED_DEFAULT_EXCEPT.join(', ')} (template ${p.template})`;
  return `${p.rules.length} egress rule(s) of template ${p.template}`;
}
