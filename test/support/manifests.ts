// The manifests end-to-end tests set up with (a template, a Sandbox with volumes), as YAML for
// `apply` or `kubectl apply`: one container named main, python:3.13-slim unless told otherwise. A test of apply itself
// writes its YAML out instead.
import YAML from 'yaml';

export const IMAGE = 'python:3.13-slim';

interface ContainerOpts {
  /** IMAGE unless given. */
  image?: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  workingDir?: string;
  limits?: Record<string, string>;
  /** Volumes by name: where the container mounts each, and (on a Sandbox) its size. */
  volumes?: Record<string, { mountPath: string; storage: string }>;
  annotations?: Record<string, string>;
}

function metadata(name: string, opts: ContainerOpts & { namespace?: string }) {
  return {
    name,
    ...(opts.namespace && { namespace: opts.namespace }),
    ...(opts.annotations && { annotations: opts.annotations }),
  };
}

function podTemplate(opts: ContainerOpts) {
  const volumes = Object.entries(opts.volumes ?? {});
  return {
    spec: {
      containers: [
        {
          name: 'main',
          image: opts.image ?? IMAGE,
          ...(opts.imagePullPolicy && { imagePullPolicy: opts.imagePullPolicy }),
          ...(opts.workingDir && { workingDir: opts.workingDir }),
          ...(opts.limits && { resources: { limits: opts.limits } }),
          ...(volumes.length > 0 && { volumeMounts: volumes.map(([name, v]) => ({ name, mountPath: v.mountPath })) }),
        },
      ],
    },
  };
}

/**
 * A v1alpha1 SandboxTemplate, offline (an empty egress list) unless `networkPolicy` says
 * otherwise: `'managed'` leaves it out, which is upstream's default (the internet).
 */
export function templateYaml(
  name: string,
  opts: Omit<ContainerOpts, 'volumes'> & { networkPolicy?: { egress?: unknown[] } | 'managed' } = {},
): string {
  const policy = opts.networkPolicy ?? { egress: [] };
  return YAML.stringify({
    apiVersion: 'extensions.agents.x-k8s.io/v1alpha1',
    kind: 'SandboxTemplate',
    metadata: metadata(name, opts),
    spec: { podTemplate: podTemplate(opts), ...(policy === 'managed' ? {} : { networkPolicy: policy }) },
  });
}

/** A v1alpha1 Sandbox; each of its volumes is a volumeClaimTemplate of that storage (ReadWriteOnce). */
export function sandboxYaml(name: string, opts: ContainerOpts & { namespace?: string } = {}): string {
  const claims = Object.entries(opts.volumes ?? {}).map(([n, v]) => ({
    metadata: { name: n },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: v.storage } } },
  }));
  return YAML.stringify({
    apiVersion: 'agents.x-k8s.io/v1alpha1',
    kind: 'Sandbox',
    metadata: metadata(name, opts),
    spec: { podTemplate: podTemplate(opts), ...(claims.length > 0 && { volumeClaimTemplates: claims }) },
  });
}
