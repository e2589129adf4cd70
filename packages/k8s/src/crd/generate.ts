// CustomResourceDefinitions generated from our own types (packages/api's zod schemas), so the
// API server validates what our code validates: both served versions, v1beta1 stored, status
// and scale subresources, printer columns, and conversion by the controller's webhook. zod's
// JSON Schema is turned into a Kubernetes *structural* schema: inlined, typed at every node,
// quantities as int-or-string, open objects as preserve-unknown-fields, RE2-safe patterns only.
import { z } from 'zod';
import { KINDS, KIND_NAMES, UPDATE_RULES, VERSIONS, type Kind, type Version } from '@asb/api';

// JSON Schema nodes are untyped data walked by key: `any` is what they are here. The output is checked
// against a real kube-apiserver (packages/k8s/test, test/k8s), not by these types.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return */
type Schema = Record<string, any>;

/** zod's JSON Schema (draft 2020-12) → an OpenAPI v3 structural schema node. */
export function structural(node: Schema): Schema {
  if ((node as unknown) === true || node === undefined || Object.keys(node).length === 0)
    return { 'x-kubernetes-preserve-unknown-fields': true };
  const out: Schema = {};
  // anyOf/oneOf: T | null → T; string | number (a quantity) → int-or-string; else open.
  const alts = (node.anyOf ?? node.oneOf) as Schema[] | undefined;
  if (alts) {
    const nonNull = alts.filter((a) => a.type !== 'null');
    const types = new Set(nonNull.map((a) => a.type));
    if (nonNull.length === 1)
      return {
        ...structural({ ...nonNull[0], ...(node.default !== undefined ? { default: node.default } : {}) }),
        ...(node.description ? { description: node.description } : {}),
      };
    if ([...types].every((t) => t === 'string' || t === 'number' || t === 'integer') && types.has('string'))
      return { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] };
    if (nonNull.every((a) => a.type === 'object')) {
      // A union of object shapes: one object with every property (each branch is checked by us).
      const merged: Schema = { type: 'object', properties: {} };
      for (const a of nonNull) Object.assign(merged.properties, a.properties ?? {});
      return structural(merged);
    }
    return { 'x-kubernetes-preserve-unknown-fields': true };
  }
  if (node.allOf) return structural(Object.assign({}, ...node.allOf));
  const types: string[] = Array.isArray(node.type)
    ? node.type.filter((t: string) => t !== 'null')
    : node.type
      ? [node.type]
      : [];
  // A quantity (string | number): int-or-string, as Kubernetes' own resource.Quantity.
  if (
    types.length > 1 &&
    types.includes('string') &&
    types.every((t) => t === 'string' || t === 'number' || t === 'integer')
  )
    return { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] };
  let type = types[0];
  if (node.const !== undefined) {
    out.enum = [node.const];
    type ??= typeof node.const;
  }
  if (!type) return { 'x-kubernetes-preserve-unknown-fields': true };
  out.type = type;
  if (node.description) out.description = node.description;
  if (node.enum) out.enum = node.enum.filter((v: unknown) => v !== null);
  if (node.default !== undefined && (typeof node.default !== 'object' || node.default === null))
    out.default = node.default;
  for (const k of ['minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems']) {
    if (typeof node[k] === 'number' && Math.abs(node[k]) < 2 ** 53 - 1) out[k] = node[k];
  }
  if (node.format === 'date-time') out.format = 'date-time';
  // Kubernetes evaluates patterns with RE2: no lookaround, no backreferences.
  if (typeof node.pattern === 'string' && !/\(\?[=!<]|\\\d/.test(node.pattern) && out.format !== 'date-time')
    out.pattern = node.pattern;
  if (type === 'object') {
    if (node.properties) {
      out.properties = Object.fromEntries(
        Object.entries(node.properties as Record<string, Schema>).map(([k, v]) => [k, structural(v)]),
      );
      if (Array.isArray(node.required) && node.required.length)
        out.required = node.required.filter(
          (r: string) => node.properties[r] && node.properties[r].default === undefined,
        );
      if (out.required?.length === 0) delete out.required;
      // A passthrough object: known fields typed, the rest kept.
      if (node.additionalProperties !== undefined && node.additionalProperties !== false)
        out['x-kubernetes-preserve-unknown-fields'] = true;
    } else if (
      node.additionalProperties &&
      node.additionalProperties !== true &&
      Object.keys(node.additionalProperties).length
    ) {
      out.additionalProperties = structural(node.additionalProperties);
    } else {
      out['x-kubernetes-preserve-unknown-fields'] = true;
    }
  }
  if (type === 'array')
    out.items = node.items ? structural(node.items) : { 'x-kubernetes-preserve-unknown-fields': true };
  return out;
}

// Printer columns as upstream's CRDs have them: v1beta1 everywhere; v1alpha1 only for pools.
const READY = { name: 'Ready', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].status" };
const REASON = { name: 'Reason', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].reason" };
const AGE = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
const POOL_COLUMNS = [
  { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
  { name: 'Desired', type: 'integer', jsonPath: '.spec.replicas' },
  AGE,
];
const COLUMNS: Record<Kind, Partial<Record<Version, Schema[]>>> = {
  Sandbox: { v1beta1: [READY, REASON, AGE] },
  SandboxTemplate: {},
  SandboxClaim: {
    v1beta1: [READY, { name: 'Sandbox', type: 'string', jsonPath: '.status.sandbox.name' }, REASON, AGE],
  },
  SandboxWarmPool: { v1alpha1: POOL_COLUMNS, v1beta1: POOL_COLUMNS },
};

/** Status everywhere but on templates (upstream's have none); scale where replicas mean pods. */
function subresources(kind: Kind, version: Version): Schema | undefined {
  if (kind === 'SandboxTemplate') return undefined;
  const scale =
    kind === 'SandboxWarmPool' || (kind === 'Sandbox' && version === 'v1alpha1')
      ? {
          scale: {
            specReplicasPath: '.spec.replicas',
            statusReplicasPath: '.status.replicas',
            labelSelectorPath: '.status.selector',
          },
        }
      : {};
  return { status: {}, ...scale };
}

export interface CrdOptions {
  /** The conversion webhook's clientConfig (the controller patches caBundle at start). */
  webhook?: Schema;
}

export function generateCrds(opts: CrdOptions = {}): Schema[] {
  return KIND_NAMES.map((kind) => {
    const info = KINDS[kind];
    const versions = VERSIONS.map((version) => {
      const json = z.toJSONSchema(info.served[version] as z.ZodType, { io: 'input', unrepresentable: 'any' }) as Schema;
      const schema = structural(json);
      // The object's own metadata is the API server's: only its type is declared.
      schema.properties.metadata = { type: 'object' };
      delete schema.properties.apiVersion.enum;
      delete schema.properties.kind.enum;
      schema.required = (schema.required ?? []).filter(
        (r: string) => r !== 'apiVersion' && r !== 'kind' && r !== 'metadata',
      );
      if (!schema.required.length) delete schema.required;
      // What an update may not change (the engine's store checks the same table).
      for (const r of UPDATE_RULES[kind] ?? [])
        (schema.properties[r.on]['x-kubernetes-validations'] ??= []).push({ rule: r.rule, message: r.message });
      const sub = subresources(kind, version);
      return {
        name: version,
        served: true,
        storage: version === 'v1beta1',
        schema: { openAPIV3Schema: schema },
        ...(sub ? { subresources: sub } : {}),
        ...(COLUMNS[kind][version] ? { additionalPrinterColumns: COLUMNS[kind][version] } : {}),
      };
    });
    return {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `${info.plural}.${info.group}` },
      spec: {
        group: info.group,
        scope: 'Namespaced',
        names: {
          kind,
          listKind: `${kind}List`,
          plural: info.plural,
          singular: kind.toLowerCase(),
          shortNames: [...info.shortNames],
        },
        versions,
        conversion: {
          strategy: 'Webhook',
          webhook: {
            conversionReviewVersions: ['v1', 'v1beta1'],
            clientConfig: opts.webhook ?? {
              service: { name: 'agent-sandbox-webhook-service', namespace: 'agent-sandbox-system', path: '/convert' },
            },
          },
        },
      },
    };
  });
}
