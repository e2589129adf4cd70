// Templates every engine starts with, so `asb run` and the seeds' flows work before anything is
// applied. They are the seeds' own templates: seed 001's python runtime, seed 000's go runtime.
import type { TemplateRecord } from './sandboxes.ts';

type Builtin = Omit<TemplateRecord, 'createdAt'>;

export const BUILTIN_TEMPLATES: Builtin[] = [
  {
    name: 'python-runtime-template', namespace: 'default',
    podTemplate: {
      metadata: { labels: { sandbox: 'python-sandbox-example' } },
      spec: {
        runtimeClassName: 'gvisor',
        containers: [{ name: 'python-runtime', image: 'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0',
          resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } } }],
      },
    },
  },
  {
    name: 'go-runtime-template', namespace: 'default',
    podTemplate: {
      metadata: { labels: { sandbox: 'go-runtime-sandbox' } },
      spec: {
        runtimeClassName: 'gvisor',
        containers: [{ name: 'go-runtime', image: 'ghcr.io/gke-demos/go-runtime-sandbox:latest',
          resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } } }],
      },
    },
  },
];
