// Conversion between the served versions and the hub (what the engines store and reconcile).
// The hub is v1beta1, upstream's storage version, with two additions v1beta1 cannot express:
//   Sandbox       status.replicas (v1alpha1's scale subresource reads it)
//   SandboxClaim  spec.sandboxTemplateRef + spec.warmpool, instead of spec.warmPoolRef, for a
//                 claim written as v1alpha1 — so "default" still means "any pool of the template"
//                 (upstream's webhook turns it into shadow-pool-<template>, losing warm adoption).
// Mapping (also in README.md):
//   Sandbox  v1alpha1 spec.replicas 1|0  ↔  spec.operatingMode Running|Suspended
//   Template v1beta1 spec.volumeClaimTemplatesPolicy ↔ annotation (when not the default)
//   Claim    see claimToV1alpha1 / claimToV1beta1; what a version cannot say rides in an annotation
//   Pool     identical specs; v1beta1 status.observedGeneration is not shown in v1alpha1
// Inputs are validated objects (defaults applied), so every round trip returns an equal object:
// served → hub → same version, and hub → either version → hub. Status fields the other version
// lacks (Sandbox nodeName/replicas, pool observedGeneration) are dropped when shown in it: the
// controller rewrites status, and it writes to the hub.
import { EXTENSIONS_GROUP, HUB_VERSION, SANDBOX_GROUP, type Version } from './meta.ts';
import type { Sandbox, SandboxV1alpha1, SandboxV1beta1 } from './sandbox.ts';
import {
  ANNOTATION_V1BETA1_VCT_POLICY,
  type SandboxTemplate,
  type SandboxTemplateV1alpha1,
  type SandboxTemplateV1beta1,
} from './template.ts';
import {
  ANNOTATION_CLAIM_V1ALPHA1_INTENT,
  ANNOTATION_CLAIM_V1BETA1_FIELDS,
  SHADOW_POOL_PREFIX,
  WARM_POOL_DEFAULT,
  WARM_POOL_NONE,
  type ClaimV1alpha1Intent,
  type ClaimV1beta1Fields,
  type SandboxClaim,
  type SandboxClaimV1alpha1,
  type SandboxClaimV1beta1,
} from './claim.ts';
import type { SandboxWarmPool, SandboxWarmPoolV1alpha1, SandboxWarmPoolV1beta1 } from './warmpool.ts';
import type { AnyObject, HubObject } from './kinds.ts';

interface Types {
  Sandbox: { v1alpha1: SandboxV1alpha1; v1beta1: SandboxV1beta1; hub: Sandbox };
  SandboxTemplate: { v1alpha1: SandboxTemplateV1alpha1; v1beta1: SandboxTemplateV1beta1; hub: SandboxTemplate };
  SandboxClaim: { v1alpha1: SandboxClaimV1alpha1; v1beta1: SandboxClaimV1beta1; hub: SandboxClaim };
  SandboxWarmPool: { v1alpha1: SandboxWarmPoolV1alpha1; v1beta1: SandboxWarmPoolV1beta1; hub: SandboxWarmPool };
}
export type HubOf<O extends { kind: keyof Types }> = Types[O['kind']]['hub'];
export type ServedOf<H extends { kind: keyof Types }, V extends Version> = Types[H['kind']][V];

export interface FromHubOptions {
  /**
   * The template a pool refers to, for showing a v1beta1 claim as v1alpha1 (which must name a
   * template). Without it, or when the pool is unknown, the pool's name is used, as upstream does.
   */
  templateOfPool?: (namespace: string, pool: string) => string | undefined;
}

export function versionOf(obj: { apiVersion: string }): Version {
  return obj.apiVersion.slice(obj.apiVersion.lastIndexOf('/') + 1) as Version;
}

// ---- small helpers (all work on copies) ----

type Meta = { annotations?: Record<string, string> };
function takeAnnotation(meta: Meta, key: string): string | undefined {
  const value = meta.annotations?.[key];
  if (value === undefined || !meta.annotations) return undefined;
  const { [key]: _removed, ...rest } = meta.annotations;
  if (Object.keys(rest).length) meta.annotations = rest;
  else delete meta.annotations;
  return value;
}
function putAnnotation(meta: Meta, key: string, value: string): void {
  meta.annotations = { ...meta.annotations, [key]: value };
}
function omit<T extends object, K extends string>(obj: T, ...keys: K[]): Omit<T, K> {
  const copy = { ...obj } as Record<string, unknown>;
  for (const k of keys) delete copy[k];
  return copy as Omit<T, K>;
}
/** The status without some fields, keeping "no status" as no status. */
function statusWithout<S extends object | undefined>(status: S, ...keys: string[]): { status?: S } {
  return status === undefined ? {} : { status: omit(status, ...keys) as S };
}

// ---- to the hub ----

/** A validated served object → the hub representation of its kind. */
export function toHub<O extends AnyObject>(obj: O): HubOf<O>;
export function toHub(input: AnyObject): HubObject {
  const obj = structuredClone(input);
  const version = versionOf(obj);
  switch (obj.kind) {
    case 'Sandbox': {
      if (version === HUB_VERSION) return obj as Sandbox;
      const { spec, ...rest } = obj as SandboxV1alpha1;
      return {
        ...rest,
        apiVersion: `${SANDBOX_GROUP}/${HUB_VERSION}`,
        spec: { ...omit(spec, 'replicas'), operatingMode: spec.replicas === 0 ? 'Suspended' : 'Running' },
      };
    }
    case 'SandboxTemplate': {
      if (version === HUB_VERSION) return obj as SandboxTemplate;
      const policy = takeAnnotation(obj.metadata, ANNOTATION_V1BETA1_VCT_POLICY) as
        SandboxTemplate['spec']['volumeClaimTemplatesPolicy'] | undefined;
      return {
        ...obj,
        apiVersion: `${EXTENSIONS_GROUP}/${HUB_VERSION}`,
        spec: { ...obj.spec, volumeClaimTemplatesPolicy: policy ?? 'Disallowed' },
      };
    }
    case 'SandboxClaim':
      return version === HUB_VERSION
        ? claimV1beta1ToHub(obj as SandboxClaimV1beta1)
        : claimV1alpha1ToHub(obj as SandboxClaimV1alpha1);
    case 'SandboxWarmPool':
      return { ...obj, apiVersion: `${EXTENSIONS_GROUP}/${HUB_VERSION}` };
  }
}

function claimV1alpha1ToHub(obj: SandboxClaimV1alpha1): SandboxClaim {
  const text = takeAnnotation(obj.metadata, ANNOTATION_CLAIM_V1BETA1_FIELDS);
  const carried = text === undefined ? undefined : (JSON.parse(text) as ClaimV1beta1Fields);
  const { sandboxTemplateRef, warmpool, ...common } = obj.spec;
  // The pool ref is restored only if the v1alpha1 fields still say what was shown for it;
  // otherwise the user re-pointed the claim in v1alpha1 terms, and that intent wins.
  const unchanged = carried && carried.sandboxTemplateRef === sandboxTemplateRef.name && carried.warmpool === warmpool;
  const source =
    unchanged && carried.warmPoolRef !== undefined
      ? { warmPoolRef: { name: carried.warmPoolRef } }
      : { sandboxTemplateRef, warmpool };
  const volumes =
    carried?.volumeClaimTemplates !== undefined ? { volumeClaimTemplates: carried.volumeClaimTemplates } : {};
  return { ...obj, apiVersion: `${EXTENSIONS_GROUP}/${HUB_VERSION}`, spec: { ...common, ...source, ...volumes } };
}

function claimV1beta1ToHub(obj: SandboxClaimV1beta1): SandboxClaim {
  const text = takeAnnotation(obj.metadata, ANNOTATION_CLAIM_V1ALPHA1_INTENT);
  const intent = text === undefined ? undefined : (JSON.parse(text) as ClaimV1alpha1Intent);
  if (!intent || intent.warmPoolRef !== obj.spec.warmPoolRef.name) return obj;
  const { warmPoolRef: _shown, ...common } = obj.spec;
  return {
    ...obj,
    spec: { ...common, sandboxTemplateRef: { name: intent.sandboxTemplateRef }, warmpool: intent.warmpool },
  };
}

// ---- from the hub ----

/** A hub object → the given served version of its kind. */
export function fromHub<H extends HubObject, V extends Version>(
  hub: H,
  version: V,
  opts?: FromHubOptions,
): ServedOf<H, V>;
export function fromHub(input: HubObject, version: Version, opts: FromHubOptions = {}): AnyObject {
  const obj = structuredClone(input);
  switch (obj.kind) {
    case 'Sandbox': {
      if (version === 'v1beta1') return { ...obj, ...statusWithout(obj.status, 'replicas') };
      const { spec, ...rest } = obj;
      const shown = statusWithout(obj.status, 'nodeName');
      // On a cluster the stored v1beta1 status has no replicas (its schema prunes them): derived
      // from the mode, as upstream's webhook does, so `kubectl scale` reads the same everywhere.
      if (shown.status && shown.status.replicas === undefined)
        shown.status.replicas = spec.operatingMode === 'Suspended' ? 0 : 1;
      return {
        ...rest,
        apiVersion: `${SANDBOX_GROUP}/v1alpha1`,
        spec: { ...omit(spec, 'operatingMode'), replicas: spec.operatingMode === 'Suspended' ? 0 : 1 },
        ...shown,
      };
    }
    case 'SandboxTemplate': {
      if (version === 'v1beta1') return obj;
      const { volumeClaimTemplatesPolicy, ...spec } = obj.spec;
      if (volumeClaimTemplatesPolicy !== 'Disallowed')
        putAnnotation(obj.metadata, ANNOTATION_V1BETA1_VCT_POLICY, volumeClaimTemplatesPolicy);
      return { ...obj, apiVersion: `${EXTENSIONS_GROUP}/v1alpha1`, spec };
    }
    case 'SandboxClaim':
      return version === 'v1beta1' ? claimToV1beta1(obj) : claimToV1alpha1(obj, opts);
    case 'SandboxWarmPool':
      if (version === 'v1beta1') return obj;
      return { ...obj, apiVersion: `${EXTENSIONS_GROUP}/v1alpha1`, ...statusWithout(obj.status, 'observedGeneration') };
  }
}

/** upstream's stripRandomSuffix: a warm Sandbox `<pool>-abcde` came from `<pool>`. */
const poolOfSandbox = (name: string) => (name.includes('-') ? name.slice(0, name.lastIndexOf('-')) : name);

/**
 * The pool a v1alpha1-intent claim is shown with in v1beta1, as upstream's webhook picks it: the
 * named pool; else the pool its warm-adopted Sandbox came from; else shadow-pool-<template>.
 */
export function v1beta1PoolFor(claim: SandboxClaim): string {
  const { warmPoolRef, sandboxTemplateRef, warmpool } = claim.spec;
  if (warmPoolRef) return warmPoolRef.name;
  if (warmpool !== undefined && warmpool !== WARM_POOL_DEFAULT && warmpool !== WARM_POOL_NONE) return warmpool;
  const sandbox = claim.status?.sandbox?.name;
  if (sandbox && sandbox !== claim.metadata.name && warmpool !== WARM_POOL_NONE) return poolOfSandbox(sandbox);
  return `${SHADOW_POOL_PREFIX}${sandboxTemplateRef!.name}`;
}

function claimToV1beta1(obj: SandboxClaim): SandboxClaimV1beta1 {
  const { sandboxTemplateRef, warmpool, warmPoolRef, ...common } = obj.spec;
  if (warmPoolRef) return { ...obj, spec: { ...common, warmPoolRef } };
  const shown = v1beta1PoolFor(obj);
  const intent: ClaimV1alpha1Intent = {
    sandboxTemplateRef: sandboxTemplateRef!.name,
    warmpool: warmpool ?? WARM_POOL_DEFAULT,
    warmPoolRef: shown,
  };
  putAnnotation(obj.metadata, ANNOTATION_CLAIM_V1ALPHA1_INTENT, JSON.stringify(intent));
  return { ...obj, spec: { ...common, warmPoolRef: { name: shown } } };
}

function claimToV1alpha1(obj: SandboxClaim, opts: FromHubOptions): SandboxClaimV1alpha1 {
  const { sandboxTemplateRef, warmpool, warmPoolRef, volumeClaimTemplates, ...common } = obj.spec;
  let template: string;
  let policy: string;
  if (sandboxTemplateRef) {
    template = sandboxTemplateRef.name;
    policy = warmpool ?? WARM_POOL_DEFAULT;
  } else {
    const pool = warmPoolRef!.name;
    const shadowOf = pool.startsWith(SHADOW_POOL_PREFIX) ? pool.slice(SHADOW_POOL_PREFIX.length) : undefined;
    template = shadowOf ?? opts.templateOfPool?.(obj.metadata.namespace, pool) ?? pool;
    policy = shadowOf !== undefined ? WARM_POOL_DEFAULT : pool;
  }
  if (warmPoolRef || volumeClaimTemplates) {
    const fields: ClaimV1beta1Fields = {
      sandboxTemplateRef: template,
      warmpool: policy,
      ...(warmPoolRef ? { warmPoolRef: warmPoolRef.name } : {}),
      ...(volumeClaimTemplates ? { volumeClaimTemplates } : {}),
    };
    putAnnotation(obj.metadata, ANNOTATION_CLAIM_V1BETA1_FIELDS, JSON.stringify(fields));
  }
  return {
    ...obj,
    apiVersion: `${EXTENSIONS_GROUP}/v1alpha1`,
    spec: { ...common, sandboxTemplateRef: { name: template }, warmpool: policy },
  };
}

/** Any served object → any served version, through the hub. */
export function convert<O extends AnyObject, V extends Version>(obj: O, to: V, opts?: FromHubOptions): ServedOf<O, V> {
  return fromHub(toHub(obj) as HubObject, to, opts) as ServedOf<O, V>;
}
