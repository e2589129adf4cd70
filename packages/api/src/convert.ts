// Conversion between the served versions (v1alpha1, the seeds' YAML; v1beta1, upstream's storage
// version since v0.5). Only Sandbox and SandboxClaim differ in shape:
//   Sandbox       spec.replicas 1|0                      ↔ spec.operatingMode Running|Suspended
//   SandboxClaim  spec.sandboxTemplateRef + spec.warmpool ↔ spec.warmPoolRef (and the template in
//                 an annotation, so the round trip is lossless)
// SandboxTemplate and SandboxWarmPool only change apiVersion.
import { KIND_GROUP, type AnyObject, type Version } from './kinds.ts';

export const ANNOTATION_CONVERTED_TEMPLATE = 'agents.x-k8s.io/v1alpha1-sandbox-template-ref';
export const ANNOTATION_CONVERTED_WARMPOOL = 'agents.x-k8s.io/v1alpha1-warmpool';

type Obj = { apiVersion: string; kind: string; metadata: { annotations?: Record<string, string> } & Record<string, unknown>; spec: Record<string, unknown>; status?: unknown };

export function versionOf(obj: { apiVersion: string }): Version {
  return obj.apiVersion.split('/')[1] as Version;
}

export function convert<T extends AnyObject>(input: T, to: Version): AnyObject {
  const obj = structuredClone(input) as unknown as Obj;
  const from = versionOf(obj);
  if (from === to) return obj as unknown as AnyObject;
  obj.apiVersion = `${KIND_GROUP[obj.kind]}/${to}`;
  const ann = { ...(obj.metadata.annotations ?? {}) };
  if (obj.kind === 'Sandbox') {
    if (to === 'v1beta1') {
      obj.spec.operatingMode = obj.spec.replicas === 0 ? 'Suspended' : 'Running';
      delete obj.spec.replicas;
    } else {
      obj.spec.replicas = obj.spec.operatingMode === 'Suspended' ? 0 : 1;
      delete obj.spec.operatingMode;
    }
  } else if (obj.kind === 'SandboxClaim') {
    if (to === 'v1beta1') {
      const template = (obj.spec.sandboxTemplateRef as { name: string }).name;
      const pool = obj.spec.warmpool as string | undefined;
      ann[ANNOTATION_CONVERTED_TEMPLATE] = template;
      if (pool !== undefined) ann[ANNOTATION_CONVERTED_WARMPOOL] = pool;
      // upstream: a claim not tied to a named pool refers to the template's shadow pool.
      obj.spec.warmPoolRef = { name: pool && pool !== 'default' && pool !== 'none' ? pool : `shadow-pool-${template}` };
      delete obj.spec.sandboxTemplateRef;
      delete obj.spec.warmpool;
    } else {
      const ref = (obj.spec.warmPoolRef as { name: string }).name;
      const template = ann[ANNOTATION_CONVERTED_TEMPLATE] ?? ref.replace(/^shadow-pool-/, '');
      obj.spec.sandboxTemplateRef = { name: template };
      obj.spec.warmpool = ann[ANNOTATION_CONVERTED_WARMPOOL] ?? (ref.startsWith('shadow-pool-') ? 'default' : ref);
      delete ann[ANNOTATION_CONVERTED_TEMPLATE];
      delete ann[ANNOTATION_CONVERTED_WARMPOOL];
      delete obj.spec.warmPoolRef;
    }
  }
  if (Object.keys(ann).length) obj.metadata.annotations = ann; else delete obj.metadata.annotations;
  return obj as unknown as AnyObject;
}
