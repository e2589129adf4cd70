// The template's NetworkPolicy on a cluster, as upstream's SandboxTemplate reconciler keeps it
// (v1.0.1 sandboxtemplate_controller.go): the template is labelled with its name's hash (what
// its pods carry), and a Managed template owns one NetworkPolicy, `<template>-network-policy`,
// selecting its pods: upstream's secure default (ingress from the router only; egress to the
// internet but private ranges and link-local) or the template's own rules, in place of it. An
// Unmanaged template's policy is deleted (one it does not control is left alone). The local
// engine gives the same rules the same meaning with its own firewall (packages/engine/src/network).
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  ANNOTATION_ALLOWED_DOMAINS,
  ANNOTATION_CREDENTIALS,
  LABEL_SANDBOX_TEMPLATE_REF_HASH,
  nameHash,
  type SandboxTemplate,
} from '@asb/api';

const FIELD_MANAGER = 'agent-sandbox-controller';
/** Where upstream's install runs the router: the default policy's ingress comes from there. */
const ROUTER_NAMESPACE = 'agent-sandbox-system';

type PolicySpec = k8s.V1NetworkPolicySpec;

/** upstream's buildDefaultNetworkPolicySpec, field for field. (Pure.) */
export function defaultNetworkPolicySpec(templateName: string): PolicySpec {
  return {
    podSelector: { matchLabels: { [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(templateName) } },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      {
        _from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ROUTER_NAMESPACE } },
            podSelector: { matchLabels: { app: 'sandbox-router' } },
          },
        ],
      },
    ],
    egress: [
      {
        to: [
          {
            ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16'] },
          },
          { ipBlock: { cidr: '::/0', except: ['fc00::/7', 'fe80::/10'] } },
        ],
      },
    ],
  };
}

/**
 * Why a template's egress is denied on a cluster, whatever its rules: it has our allow-list of
 * names or credentials, which only the local engine's egress proxy enforces. A cluster has no such
 * proxy, and allowing the addresses instead would widen what the template asked for. (Pure.)
 */
export function namesNotEnforced(template: SandboxTemplate): string | undefined {
  const a = template.metadata.annotations ?? {};
  const ours = [ANNOTATION_ALLOWED_DOMAINS, ANNOTATION_CREDENTIALS].filter((k) => a[k] !== undefined);
  if (!ours.length) return undefined;
  return (
    `${ours.join(' and ')} ${ours.length > 1 ? 'are' : 'is'} enforced by the local engine's egress proxy, ` +
    "which a cluster does not have: this template's NetworkPolicy denies all egress instead"
  );
}

/** What a template's NetworkPolicy should be, or undefined when it should have none. (Pure.) */
export function desiredNetworkPolicySpec(template: SandboxTemplate): PolicySpec | undefined {
  if ((template.spec.networkPolicyManagement ?? 'Managed') === 'Unmanaged') return undefined;
  const np = template.spec.networkPolicy;
  if (namesNotEnforced(template)) {
    const base = np
      ? desiredNetworkPolicySpec({ ...template, metadata: { ...template.metadata, annotations: {} } })!
      : defaultNetworkPolicySpec(template.metadata.name!);
    return { ...base, egress: [] };
  }
  if (!np) return defaultNetworkPolicySpec(template.metadata.name!);
  return {
    podSelector: { matchLabels: { [LABEL_SANDBOX_TEMPLATE_REF_HASH]: nameHash(template.metadata.name!) } },
    policyTypes: ['Ingress', 'Egress'],
    // The client's model names `from` `_from` (a reserved word in its generator's languages).
    ingress: np.ingress?.map(({ from, ports }) => ({ _from: from, ports })),
    egress: np.egress as k8s.V1NetworkPolicyEgressRule[] | undefined,
  };
}

/** A spec as the API shows it, for comparing: `from` named so, keys sorted, nothing undefined. (Pure.) */
export function comparable(spec: PolicySpec | undefined): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([, x]) => x !== undefined)
              .map(([k, x]) => [k === '_from' ? 'from' : k, sorted(x)] as const)
              .sort(([a], [b]) => a.localeCompare(b)),
          )
        : v;
  return JSON.stringify(sorted(spec ?? {}));
}

export class TemplateNetworkPolicies {
  private readonly net: k8s.NetworkingV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  /** One reconcile per template at a time; a change during one brings one more. */
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();

  constructor(
    kc: k8s.KubeConfig,
    private readonly log: Logger,
    /** A Warning event on the template (its names cannot be enforced here). */
    private readonly warn: (template: SandboxTemplate, reason: string, message: string) => void = () => undefined,
  ) {
    this.net = kc.makeApiClient(k8s.NetworkingV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  /** A template was added or changed. */
  changed(template: SandboxTemplate): void {
    const key = `${template.metadata.namespace}/${template.metadata.name}`;
    if (this.running.has(key)) {
      this.again.add(key);
      return;
    }
    const run = this.reconcile(template)
      .catch((err: Error) =>
        this.log.warn({ template: key, err: err.message }, "template's NetworkPolicy not reconciled"),
      )
      .finally(() => {
        this.running.delete(key);
        if (this.again.delete(key)) this.changed(template);
      });
    this.running.set(key, run);
  }

  async idle(): Promise<void> {
    while (this.running.size) await Promise.all(this.running.values());
  }

  private async reconcile(template: SandboxTemplate): Promise<void> {
    if (template.metadata.deletionTimestamp) return;
    const namespace = template.metadata.namespace;
    const name = template.metadata.name!;
    await this.ensureHashLabel(template);
    const npName = `${name}-network-policy`;
    const existing = await this.net
      .readNamespacedNetworkPolicy({ namespace, name: npName })
      .catch((err: { code?: number }) => {
        if (err.code === 404) return undefined;
        throw err;
      });
    const controlled = existing?.metadata?.ownerReferences?.some(
      (r) => r.controller && r.uid === template.metadata.uid,
    );
    const desired = desiredNetworkPolicySpec(template);
    const unenforced = namesNotEnforced(template);
    if (desired && unenforced) this.warn(template, 'NamesNotEnforced', unenforced);
    if (!desired) {
      if (existing && controlled) {
        await this.net.deleteNamespacedNetworkPolicy({ namespace, name: npName });
        this.log.info({ template: name, namespace }, 'deleted the NetworkPolicy of an Unmanaged template');
      }
      return;
    }
    if (existing) {
      if (!controlled)
        throw new Error(`NetworkPolicy ${npName} exists and is not controlled by SandboxTemplate ${name}`);
      if (comparable(existing.spec) === comparable(desired)) return;
      await this.net.replaceNamespacedNetworkPolicy({
        namespace,
        name: npName,
        body: { ...existing, spec: desired },
        fieldManager: FIELD_MANAGER,
      });
      return;
    }
    await this.net.createNamespacedNetworkPolicy({
      namespace,
      fieldManager: FIELD_MANAGER,
      body: {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: {
          name: npName,
          namespace,
          ownerReferences: [
            {
              apiVersion: template.apiVersion,
              kind: 'SandboxTemplate',
              name,
              uid: template.metadata.uid!,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: desired,
      },
    });
  }

  /** The template carries its name's hash as a label, as upstream v1.0 labels it. */
  private async ensureHashLabel(template: SandboxTemplate): Promise<void> {
    const hash = nameHash(template.metadata.name!);
    if (template.metadata.labels?.[LABEL_SANDBOX_TEMPLATE_REF_HASH] === hash) return;
    const [group, version] = template.apiVersion.split('/') as [string, string];
    await this.custom.patchNamespacedCustomObject(
      {
        group,
        version,
        namespace: template.metadata.namespace,
        plural: 'sandboxtemplates',
        name: template.metadata.name!,
        body: { metadata: { labels: { [LABEL_SANDBOX_TEMPLATE_REF_HASH]: hash } } },
        fieldManager: FIELD_MANAGER,
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }
}
