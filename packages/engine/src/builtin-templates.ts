// Templates every engine starts with, so `asb run` and the seeds' flows work before anything is
// applied: seed 001's python runtime and seed 000's go runtime, as the YAML a user would apply,
// but offline (an empty egress list): a sandbox reaches a network only where a template says so.
import { parseManifests, formatIssues } from '@asb/api';

export const BUILTIN_TEMPLATES_YAML = `
apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxTemplate
metadata:
  name: python-runtime-template
  namespace: default
spec:
  podTemplate:
    metadata:
      labels:
        sandbox: python-sandbox-example
    spec:
      runtimeClassName: gvisor
      containers:
      - name: python-runtime
        image: registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0
        ports:
        - containerPort: 8888
        resources:
          requests: { cpu: 250m, memory: 512Mi }
          limits: { cpu: "1", memory: 1Gi }
  # Offline: no egress at all. Drop this for upstream's default (the internet, no private ranges).
  networkPolicy:
    egress: []
---
apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxTemplate
metadata:
  name: go-runtime-template
  namespace: default
spec:
  podTemplate:
    metadata:
      labels:
        sandbox: go-runtime-sandbox
    spec:
      runtimeClassName: gvisor
      containers:
      - name: go-runtime
        image: ghcr.io/gke-demos/go-runtime-sandbox:latest
        ports:
        - containerPort: 8888
        resources:
          requests: { cpu: 500m, memory: 512Mi }
          limits: { cpu: "2", memory: 2Gi }
  networkPolicy:
    egress: []
`;

export function builtinTemplates() {
  return parseManifests(BUILTIN_TEMPLATES_YAML, 'builtin').map((r) => {
    if (!r.ok) throw new Error(`built-in template is invalid:\n${formatIssues(r.errors)}`);
    return r.object;
  });
}
