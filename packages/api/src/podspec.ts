// The PodSpec subset the engines read, typed and validated; every other PodSpec field passes
// through untouched, so any upstream YAML applies unchanged.
import { z } from 'zod';
import { isQuantity } from './quantity.ts';
import { TemplateMeta, dnsLabel } from './meta.ts';

const quantity = z.union([z.string(), z.number()]).refine(isQuantity, { message: 'must be a Kubernetes quantity such as 512Mi, 1Gi, 250m or 2' });
export const ResourceList = z.record(z.string(), quantity);

export const EnvVar = z.looseObject({
  name: z.string().min(1, 'env var name is required'),
  value: z.string().optional(),
  valueFrom: z.record(z.string(), z.unknown()).optional(),
});

export const Container = z.looseObject({
  name: dnsLabel,
  image: z.string({ error: 'image is required' }).min(1, 'image is required'),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  workingDir: z.string().optional(),
  env: z.array(EnvVar).optional(),
  ports: z.array(z.looseObject({ containerPort: z.number().int().min(1).max(65535), name: z.string().optional(), protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional() })).optional(),
  resources: z.looseObject({ limits: ResourceList.optional(), requests: ResourceList.optional() }).optional(),
  readinessProbe: z.record(z.string(), z.unknown()).optional(),
  securityContext: z.record(z.string(), z.unknown()).optional(),
  volumeMounts: z.array(z.looseObject({ name: z.string(), mountPath: z.string(), readOnly: z.boolean().optional() })).optional(),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
});
export type Container = z.infer<typeof Container>;

export const PodSpec = z.looseObject({
  containers: z.array(Container).min(1, 'at least one container is required'),
  initContainers: z.array(Container).optional(),
  runtimeClassName: z.string().optional(),
  restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
  nodeSelector: z.record(z.string(), z.string()).optional(),
  tolerations: z.array(z.record(z.string(), z.unknown())).optional(),
  serviceAccountName: z.string().optional(),
  automountServiceAccountToken: z.boolean().optional(),
  securityContext: z.record(z.string(), z.unknown()).optional(),
  volumes: z.array(z.looseObject({ name: z.string() })).optional(),
  dnsPolicy: z.string().optional(),
});
export type PodSpec = z.infer<typeof PodSpec>;

export const PodTemplate = z.object({ metadata: TemplateMeta.optional(), spec: PodSpec }).strict();
export type PodTemplate = z.infer<typeof PodTemplate>;

export const VolumeClaimTemplate = z.object({
  metadata: TemplateMeta.extend({ name: dnsLabel }),
  spec: z.looseObject({ accessModes: z.array(z.string()).optional(), resources: z.looseObject({ requests: ResourceList.optional() }).optional(), storageClassName: z.string().optional() }),
}).strict();
