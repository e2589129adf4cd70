// Pure: what a Sandbox may reach, from its template, as upstream's managed NetworkPolicy says on a
// cluster. A Sandbox is governed by the SandboxTemplate of its namespace whose name hashes to its
// pod's `sandbox-template-ref-hash` label (the label the NetworkPolicy selects on there). What no
// template governs, or what an Unmanaged template leaves to NetworkPolicies of the user's own
// (which do not exist on one machine), stays offline: the local engine's default is no network.
import {
  ANNOTATION_ALLOWED_DOMAINS,
  ANNOTATION_CREDENTIALS,
  LABEL_SANDBOX_TEMPLATE_REF_HASH,
  nameHash,
  type Sandbox,
  type SandboxTemplate,
} from '@asb/api';
import { inCidr } from './addresses.ts';

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

export { ANNOTATION_ALLOWED_DOMAINS, ANNOTATION_CREDENTIALS };

/** A secret the egress proxy adds to a destination's requests; its value never enters the sandbox. */
export interface CredentialSpec {
  /** The destination's host name (exact). */
  host: string;
  /** A Secret in $ASB_HOME/secrets/<namespace>/ (NAME.json or NAME.yaml), and its key. */
  secret: string;
  key: string;
  /** The request header set, and its value with `{value}` where the secret goes. */
  header: string;
  format: string;
}

/** Names the sandbox may reach (ports 80 and 443 through the engine's egress proxy). */
export interface ProxyPolicy {
  /** `example.com`, `*.example.com` (any subdomain, not the apex), or `*` (any name). */
  domains: string[];
  credentials: CredentialSpec[];
}

export type EgressPolicy =
  | { kind: 'offline'; why: string }
  | {
      kind: 'egress';
      /** Where the rules come from, for the log and `asb`'s describe. */
      source: 'managed-default' | 'template';
      template: string;
      /** What may leave, by address. With a proxy policy: where the names may lead (a name that
       *  resolves elsewhere is refused), and nothing leaves but through the proxy. */
      rules: EgressRule[];
      /** Parts of the template's rules that cannot match anything on one machine (pod and
       *  namespace selectors, named ports, IPv6 blocks): said in the log, never widened. */
      ignored: string[];
      proxy?: ProxyPolicy;
    };

/** An annotation of ours that cannot be used as written: refused at apply, and a sandbox of a
 *  template stored before that does not start. */
export class PolicyError extends Error {}

/** What is wrong with a SandboxTemplate's annotations of ours, as the API's field causes. */
export function templateAnnotationIssues(obj: {
  kind: string;
  metadata: { annotations?: Record<string, string> };
}): Array<{ field: string; message: string }> {
  if (obj.kind !== 'SandboxTemplate') return [];
  try {
    proxyPolicyOf(obj as SandboxTemplate);
    return [];
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    const key = [ANNOTATION_CREDENTIALS, ANNOTATION_ALLOWED_DOMAINS].find((k) => err.message.startsWith(k))!;
    return [{ field: `metadata.annotations[${key}]`, message: err.message }];
  }
}

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
  const proxy = proxyPolicyOf(template);
  if (!np) {
    return {
      kind: 'egress',
      source: 'managed-default',
      template: name,
      rules: [{ to: [{ cidr: '0.0.0.0/0', except: [...MANAGED_DEFAULT_EXCEPT] }] }],
      ignored: [],
      proxy,
    };
  }
  const ignored: string[] = [];
  const rules = (np.egress ?? []).flatMap((r, i) => ruleOf(r, `egress[${i}]`, ignored));
  if (rules.length === 0) {
    const why = (np.egress ?? []).length === 0 ? 'its egress rules are empty' : 'none of its egress rules can match';
    return { kind: 'offline', why: `template ${name}: ${why} (deny all)` };
  }
  return { kind: 'egress', source: 'template', template: name, rules, ignored, proxy };
}

const DOMAIN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The template's allow-list and credentials, when it has either (credentials alone allow any
 *  name: the proxy is there for them, the addresses still bound by the rules). */
export function proxyPolicyOf(template: SandboxTemplate): ProxyPolicy | undefined {
  const a = template.metadata.annotations ?? {};
  const list = a[ANNOTATION_ALLOWED_DOMAINS];
  const creds = a[ANNOTATION_CREDENTIALS];
  if (list === undefined && creds === undefined) return undefined;
  const domains = (list ?? '*')
    .split(/[\s,]+/)
    .map((d) => d.trim().toLowerCase().replace(/\.$/, ''))
    .filter(Boolean);
  for (const d of domains) {
    if (d !== '*' && !DOMAIN.test(d))
      throw new PolicyError(`${ANNOTATION_ALLOWED_DOMAINS}: "${d}" is not a host name or *.domain`);
  }
  return { domains, credentials: creds === undefined ? [] : credentialsOf(creds) };
}

function credentialsOf(text: string): CredentialSpec[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new PolicyError(`${ANNOTATION_CREDENTIALS}: not JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new PolicyError(`${ANNOTATION_CREDENTIALS}: must be a JSON list`);
  return parsed.map((c: Record<string, unknown>, i) => {
    const at = `${ANNOTATION_CREDENTIALS}[${i}]`;
    const str = (k: string, d?: string) => {
      const v = c?.[k] ?? d;
      if (typeof v !== 'string' || !v) throw new PolicyError(`${at}.${k}: a string is required`);
      return v;
    };
    const host = str('host').toLowerCase();
    if (!DOMAIN.test(host) || host.startsWith('*')) throw new PolicyError(`${at}.host: "${host}" is not a host name`);
    const header = str('header', 'Authorization');
    if (!/^[A-Za-z0-9-]+$/.test(header)) throw new PolicyError(`${at}.header: "${header}" is not a header name`);
    const format = str('format', 'Bearer {value}');
    if (!format.includes('{value}')) throw new PolicyError(`${at}.format: must contain {value}`);
    return { host, secret: str('secret'), key: str('key', 'token'), header, format };
  });
}

/** Whether `host` is on the list (or is a credential's destination). */
export function nameAllowed(proxy: ProxyPolicy, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (proxy.credentials.some((c) => c.host === h)) return true;
  return proxy.domains.some((d) => d === '*' || d === h || (d.startsWith('*.') && h.endsWith(d.slice(1))));
}

/** Whether the rules let a connection to `address`:`port` through (the proxy's check of where an
 *  allowed name leads). */
export function addressAllowed(rules: readonly EgressRule[], address: string, port: number): boolean {
  return rules.some(
    (r) =>
      (!r.to || r.to.some((b) => inCidr(address, b.cidr) && !b.except.some((e) => inCidr(address, e)))) &&
      (!r.ports ||
        r.ports.some(
          (p) => p.protocol === 'tcp' && (p.port === undefined || (port >= p.port && port <= (p.endPort ?? p.port))),
        )),
  );
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
