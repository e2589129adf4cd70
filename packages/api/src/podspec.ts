// The embedded Kubernetes types (PodSpec, PersistentVolumeClaimSpec, label selectors). Every field
// the engines read is typed and checked the way the API server checks it, so a mistake is reported
// when the YAML is applied rather than when a pod fails to start; every other field passes through
// untouched (loose objects), so any upstream YAML applies unchanged.
import { z } from 'zod';
import { Quantity, ResourceList, isQuantity, parseQuantity } from './quantity.ts';
import { Annotations, Labels, PodMetadata, dnsLabel, dnsSubdomain, isQualifiedName } from './meta.ts';

const nonNegativeInt = z.number().int().min(0);
const positiveInt = z.number().int().min(1);
const portNumber = z
  .number()
  .int()
  .min(1, 'must be a port number from 1 to 65535')
  .max(65535, 'must be a port number from 1 to 65535');
// IANA service name: ≤15 lowercase letters, digits and "-", with a letter, no leading, trailing or double "-".
const portName = z
  .string()
  .regex(
    /^(?!-)(?!.*--)(?=.*[a-z])[a-z0-9-]{1,15}(?<!-)$/,
    'must be a port name: at most 15 lowercase letters, digits and "-", with at least one letter',
  );
const intOrStringPort = z.union([portNumber, portName]);
const qualifiedKey = z
  .string()
  .refine(isQualifiedName, { message: 'must be a qualified name such as app or example.com/tier' });

export const LabelSelector = z.looseObject({
  matchLabels: Labels.optional(),
  matchExpressions: z
    .array(
      z.looseObject({
        key: qualifiedKey,
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});
export type LabelSelector = z.infer<typeof LabelSelector>;

// ---- containers ----

export const EnvVar = z
  .looseObject({
    // Kubernetes accepts any printable ASCII name except "=" (relaxed from C identifiers in 1.32).
    name: z
      .string()
      .min(1, 'Required')
      .regex(/^[\x20-\x3c\x3e-\x7e]+$/, 'must be printable ASCII without "="'),
    value: z.string().optional(),
    valueFrom: z
      .looseObject({
        fieldRef: z.looseObject({ fieldPath: z.string() }).optional(),
        resourceFieldRef: z.looseObject({ resource: z.string() }).optional(),
        configMapKeyRef: z.looseObject({ name: z.string().optional(), key: z.string() }).optional(),
        secretKeyRef: z.looseObject({ name: z.string().optional(), key: z.string() }).optional(),
      })
      .optional(),
  })
  .refine((e) => !(e.value && e.valueFrom), { message: 'may not have both value and valueFrom', path: ['valueFrom'] });
export type EnvVar = z.infer<typeof EnvVar>;

export const ContainerPort = z.looseObject({
  containerPort: portNumber,
  name: portName.optional(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
  hostPort: portNumber.optional(),
  hostIP: z.string().optional(),
});
export type ContainerPort = z.infer<typeof ContainerPort>;

const HANDLERS = ['httpGet', 'tcpSocket', 'exec', 'grpc'] as const;
export const Probe = z
  .looseObject({
    httpGet: z
      .looseObject({
        path: z.string().optional(),
        port: intOrStringPort,
        host: z.string().optional(),
        scheme: z.enum(['HTTP', 'HTTPS']).optional(),
        httpHeaders: z.array(z.looseObject({ name: z.string().min(1), value: z.string() })).optional(),
      })
      .optional(),
    tcpSocket: z.looseObject({ port: intOrStringPort, host: z.string().optional() }).optional(),
    exec: z.looseObject({ command: z.array(z.string()).min(1, 'must name a command') }).optional(),
    grpc: z.looseObject({ port: portNumber, service: z.string().optional() }).optional(),
    initialDelaySeconds: nonNegativeInt.optional(),
    periodSeconds: positiveInt.optional(),
    timeoutSeconds: positiveInt.optional(),
    successThreshold: positiveInt.optional(),
    failureThreshold: positiveInt.optional(),
    terminationGracePeriodSeconds: positiveInt.optional(),
  })
  .refine((p) => HANDLERS.filter((h) => p[h] !== undefined).length === 1, {
    message: 'must have exactly one handler: httpGet, tcpSocket, exec or grpc',
  });
export type Probe = z.infer<typeof Probe>;

export const ResourceRequirements = z
  .looseObject({
    limits: ResourceList.optional(),
    requests: ResourceList.optional(),
  })
  .superRefine((r, ctx) => {
    for (const [name, request] of Object.entries(r.requests ?? {})) {
      const limit = r.limits?.[name];
      if (limit === undefined || !isQuantity(limit) || !isQuantity(request)) continue;
      if (parseQuantity(request) > parseQuantity(limit)) {
        ctx.addIssue({
          code: 'custom',
          path: ['requests', name],
          message: `must be less than or equal to the ${name} limit (${limit})`,
          input: request,
        });
      }
    }
  });
export type ResourceRequirements = z.infer<typeof ResourceRequirements>;

export const SecurityContext = z.looseObject({
  runAsUser: nonNegativeInt.optional(),
  runAsGroup: nonNegativeInt.optional(),
  runAsNonRoot: z.boolean().optional(),
  readOnlyRootFilesystem: z.boolean().optional(),
  allowPrivilegeEscalation: z.boolean().optional(),
  privileged: z.boolean().optional(),
  capabilities: z.looseObject({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() }).optional(),
  seccompProfile: z.looseObject({ type: z.enum(['RuntimeDefault', 'Unconfined', 'Localhost']) }).optional(),
});
export type SecurityContext = z.infer<typeof SecurityContext>;

export const VolumeMount = z.looseObject({
  name: z.string().min(1, 'Required'),
  mountPath: z.string().min(1, 'Required'),
  readOnly: z.boolean().optional(),
  subPath: z
    .string()
    .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), {
      message: 'must be a relative path without ".."',
    })
    .optional(),
});
export type VolumeMount = z.infer<typeof VolumeMount>;

export const Container = z.looseObject({
  name: dnsLabel,
  image: z
    .string({ error: (iss) => (iss.input === undefined ? 'image is required' : undefined) })
    .min(1, 'image is required'),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  workingDir: z.string().optional(),
  env: z.array(EnvVar).optional(),
  envFrom: z.array(z.looseObject({})).optional(),
  ports: z.array(ContainerPort).optional(),
  resources: ResourceRequirements.optional(),
  readinessProbe: Probe.optional(),
  livenessProbe: Probe.optional(),
  startupProbe: Probe.optional(),
  securityContext: SecurityContext.optional(),
  volumeMounts: z.array(VolumeMount).optional(),
  stdin: z.boolean().optional(),
  tty: z.boolean().optional(),
  // Only init containers take it ("Always" makes a sidecar).
  restartPolicy: z.literal('Always').optional(),
});
export type Container = z.infer<typeof Container>;

// ---- pod ----

export const Toleration = z.looseObject({
  key: qualifiedKey.optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});

export const Volume = z.looseObject({
  name: dnsLabel,
  emptyDir: z.looseObject({ medium: z.string().optional(), sizeLimit: Quantity.optional() }).optional(),
  persistentVolumeClaim: z.looseObject({ claimName: z.string().min(1), readOnly: z.boolean().optional() }).optional(),
});
export type Volume = z.infer<typeof Volume>;

export const PodSecurityContext = z.looseObject({
  runAsUser: nonNegativeInt.optional(),
  runAsGroup: nonNegativeInt.optional(),
  runAsNonRoot: z.boolean().optional(),
  fsGroup: nonNegativeInt.optional(),
  supplementalGroups: z.array(nonNegativeInt).optional(),
  seccompProfile: z.looseObject({ type: z.enum(['RuntimeDefault', 'Unconfined', 'Localhost']) }).optional(),
});

export const PodDNSConfig = z.looseObject({
  nameservers: z.array(z.string()).max(3, 'at most 3 nameservers').optional(),
  searches: z.array(z.string()).max(32, 'at most 32 search domains').optional(),
  options: z.array(z.looseObject({ name: z.string(), value: z.string().optional() })).optional(),
});

/** Reports the second and later uses of a name within a list, as the API server does. */
function uniqueNames(
  ctx: z.core.$RefinementCtx,
  names: readonly unknown[],
  pathOf: (i: number) => PropertyKey[],
  seen = new Set<unknown>(),
) {
  names.forEach((name, i) => {
    if (seen.has(name))
      ctx.addIssue({
        code: 'custom',
        path: pathOf(i),
        message: `duplicate name: ${JSON.stringify(name)} is already used`,
        input: name,
      });
    seen.add(name);
  });
}

export const PodSpec = z
  .looseObject({
    containers: z.array(Container).min(1, 'at least one container is required'),
    initContainers: z.array(Container).optional(),
    runtimeClassName: dnsSubdomain.optional(),
    restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
    nodeSelector: z.record(qualifiedKey, z.string()).optional(),
    tolerations: z.array(Toleration).optional(),
    serviceAccountName: dnsSubdomain.optional(),
    automountServiceAccountToken: z.boolean().optional(),
    securityContext: PodSecurityContext.optional(),
    volumes: z.array(Volume).optional(),
    dnsPolicy: z.enum(['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None']).optional(),
    dnsConfig: PodDNSConfig.optional(),
    hostname: dnsLabel.optional(),
    subdomain: dnsLabel.optional(),
    hostNetwork: z.boolean().optional(),
    hostPID: z.boolean().optional(),
    hostIPC: z.boolean().optional(),
    terminationGracePeriodSeconds: nonNegativeInt.optional(),
    activeDeadlineSeconds: positiveInt.optional(),
    enableServiceLinks: z.boolean().optional(),
    imagePullSecrets: z.array(z.looseObject({ name: z.string() })).optional(),
  })
  .superRefine((spec, ctx) => {
    const names = new Set<unknown>();
    uniqueNames(
      ctx,
      spec.containers.map((c) => c.name),
      (i) => ['containers', i, 'name'],
      names,
    );
    uniqueNames(
      ctx,
      (spec.initContainers ?? []).map((c) => c.name),
      (i) => ['initContainers', i, 'name'],
      names,
    );
    uniqueNames(
      ctx,
      (spec.volumes ?? []).map((v) => v.name),
      (i) => ['volumes', i, 'name'],
    );
    if (spec.dnsPolicy === 'None' && !spec.dnsConfig?.nameservers?.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['dnsConfig', 'nameservers'],
        message: 'Required when dnsPolicy is None (the pod would have no resolver)',
      });
    }
  });
export type PodSpec = z.infer<typeof PodSpec>;

export const PodTemplate = z.object({ metadata: PodMetadata.optional(), spec: PodSpec }).strict();
export type PodTemplate = z.infer<typeof PodTemplate>;

// ---- volume claim templates ----

export const PersistentVolumeClaimSpec = z.looseObject({
  accessModes: z
    .array(z.enum(['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod']))
    .min(1, 'at least one access mode is required'),
  resources: z.looseObject({
    requests: ResourceList.refine((r) => r.storage !== undefined, {
      message: 'Required: the volume size, e.g. 10Gi',
      path: ['storage'],
    }),
    limits: ResourceList.optional(),
  }),
  storageClassName: z.string().optional(),
  volumeMode: z.enum(['Filesystem', 'Block']).optional(),
  selector: LabelSelector.optional(),
  volumeName: z.string().optional(),
});
export type PersistentVolumeClaimSpec = z.infer<typeof PersistentVolumeClaimSpec>;

/** A PVC per Sandbox (`<name>-<sandbox>`), mounted as the volume `<name>`, so the name is a DNS label. */
export const VolumeClaimTemplate = z
  .object({
    metadata: z.object({ name: dnsLabel, labels: Labels.optional(), annotations: Annotations.optional() }).strict(),
    spec: PersistentVolumeClaimSpec,
  })
  .strict();
export type VolumeClaimTemplate = z.infer<typeof VolumeClaimTemplate>;

/**
 * A claim's own volumeClaimTemplates: names (even a missing one) are not judged here but by the
 * claim's controller, which reports an empty, repeated or invalid one as
 * Ready=False/VolumeClaimTemplatesError, as upstream's does (its API server accepts such a claim).
 */
export const ClaimVolumeClaimTemplates = z.array(
  VolumeClaimTemplate.extend({ metadata: VolumeClaimTemplate.shape.metadata.extend({ name: z.string().optional() }) }),
);

/** volumeClaimTemplates: an atomic list with unique names (each becomes a pod volume). */
export const VolumeClaimTemplates = z.array(VolumeClaimTemplate).superRefine((list, ctx) => {
  uniqueNames(
    ctx,
    list.map((t) => t.metadata.name),
    (i) => [i, 'metadata', 'name'],
  );
});
