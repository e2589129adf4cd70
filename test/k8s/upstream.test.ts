// Side by side with upstream: the same v1beta1 inputs on three clusters, one run by our controller
// (with our CRDs), one by upstream's v0.5.6 controller and one by its v1.0.1 (each with its own
// CRDs); then every object each produced (Sandboxes, claims, pools, Pods, Services, PVCs, the
// templates' labels and NetworkPolicies, and the events' reasons) is compared with ours, uids,
// times, IPs and random name suffixes aside. What
// differs on purpose is listed in DELIBERATE with the reason (per upstream version where they
// differ); any other difference fails, and so does a listed one that is gone.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { startCluster, type Cluster } from './cluster.ts';
import { startHarness, waitFor, type Harness } from './harness.ts';
import { installUpstreamCrds, startUpstreamController } from './upstream.ts';

const INPUTS = `apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
metadata: { name: unmanaged-template, namespace: default }
spec:
  networkPolicyManagement: Unmanaged
  podTemplate: { spec: { containers: [{ name: main, image: python:3.13-slim }] } }
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
metadata: { name: custom-policy-template, namespace: default }
spec:
  podTemplate: { spec: { containers: [{ name: main, image: python:3.13-slim }] } }
  networkPolicy:
    ingress: [{ from: [{ podSelector: { matchLabels: { app: client } } }], ports: [{ port: 8888 }] }]
    egress:
    - to: [{ ipBlock: { cidr: 203.0.113.0/24, except: [203.0.113.20/32] } }]
      ports: [{ protocol: TCP, port: 443 }, { protocol: UDP, port: 53 }]
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
metadata: { name: python-runtime-template, namespace: default }
spec:
  podTemplate:
    metadata: { labels: { sandbox: python-sandbox-example }, annotations: { team: agents } }
    spec:
      runtimeClassName: gvisor
      containers:
      - name: python-runtime
        image: registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0
        ports: [{ containerPort: 8888 }]
        readinessProbe: { httpGet: { path: "/", port: 8888 }, initialDelaySeconds: 0, periodSeconds: 1 }
        resources: { requests: { cpu: "250m", memory: "512Mi", ephemeral-storage: "512Mi" } }
      restartPolicy: "OnFailure"
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxWarmPool
metadata: { name: python-sandbox-warmpool, namespace: default }
spec: { replicas: 2, sandboxTemplateRef: { name: python-runtime-template } }
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxWarmPool
metadata: { name: empty-pool, namespace: default }
spec: { replicas: 0, sandboxTemplateRef: { name: python-runtime-template } }
---
apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata: { name: plain, namespace: default, labels: { app: plain } }
spec:
  service: true
  podTemplate:
    metadata: { labels: { role: worker } }
    spec:
      containers: [{ name: main, image: python:3.13-slim }]
---
apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata: { name: with-volume, namespace: default }
spec:
  podTemplate:
    spec:
      containers: [{ name: main, image: python:3.13-slim, volumeMounts: [{ name: workspace, mountPath: /workspace }] }]
  volumeClaimTemplates:
  - metadata: { name: workspace, labels: { data: keep } }
    spec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 1Gi } } }
---
apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata: { name: parked, namespace: default }
spec:
  operatingMode: Suspended
  podTemplate:
    spec:
      containers: [{ name: main, image: python:3.13-slim }]
`;

const CLAIM = `apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata: { name: warm-claim, namespace: default, labels: { user: alice } }
spec: { warmPoolRef: { name: python-sandbox-warmpool } }
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata: { name: cold-claim, namespace: default, labels: { agents.x-k8s.io/created-by: python-client } }
spec: { warmPoolRef: { name: empty-pool } }
`;

const OPEN_PODSPEC =
  "upstream's CRD embeds the whole PodSpec schema, and the API server applies its defaults to the Sandbox; ours keeps the PodSpec open (crd-upstream.test.ts), so the default is applied one step later, to the Pod (which has protocol TCP either way)";
const GO_OMITEMPTY =
  'upstream copies the template through Go structs, whose omitempty drops a 0; we copy what the user wrote (0 is the default: same meaning)';

/** Differences we mean from both versions, each with its reason. Keys are the diff lines below. */
const DELIBERATE: Record<string, string> = {
  ...Object.fromEntries(
    ['python-sandbox-warmpool-ADOPTED', 'python-sandbox-warmpool-MEMBER', 'cold-claim'].flatMap((sb) => [
      [
        `Sandbox/${sb}.spec.podTemplate.spec.containers.0.ports.0.protocol: upstream "TCP" ours undefined`,
        OPEN_PODSPEC,
      ],
      [
        `Sandbox/${sb}.spec.podTemplate.spec.containers.0.readinessProbe.initialDelaySeconds: upstream undefined ours 0`,
        GO_OMITEMPTY,
      ],
    ]),
  ),
  'SandboxClaim/warm-claim.spec.additionalPodMetadata: upstream {} ours undefined':
    "a default in upstream's CRD schema; absent and empty mean the same to both controllers",
  ...Object.fromEntries(
    ['warm-claim', 'cold-claim'].map((claim) => [
      `SandboxClaim/${claim}.annotations.agents.x-k8s.io/claim-first-ready-at: upstream "TIME" ours undefined`,
      "upstream persists it for its claim-ready-latency metric (one more write per claim); ours keeps the time in memory. Upstream's e2e suites do not read it (they do read controller-first-observed-at, which ours writes)",
    ]),
  ),
  'SandboxWarmPool/empty-pool.status.replicas: upstream undefined ours 0':
    "Go's omitempty drops a 0 from upstream's status; ours says 0 (kubectl's columns then show 0, not a blank)",
  'SandboxWarmPool/empty-pool.status.readyReplicas: upstream undefined ours 0': 'the same: omitempty',
};

/** Differences we mean from one version only. */
const DELIBERATE_BY_VERSION: Record<string, Record<string, string>> = {
  'v0.5.6': Object.fromEntries([
    ...['cold-claim', 'python-sandbox-warmpool-ADOPTED'].map((pod) => [
      `Pod/${pod}.labels.agents.x-k8s.io/claim-uid: upstream undefined ours "CLAIM-UID"`,
      "v1.0 carries the owning claim's uid from the Sandbox to its Pod (computeExtensionPodLabels); we follow v1.0",
    ]),
    ...['plain', 'with-volume'].map((sb) => [
      `Sandbox/${sb}.annotations.agents.x-k8s.io/pod-name: upstream "${sb}" ours undefined`,
      "v1.0 no longer writes it on a Sandbox whose pod is named after it; we follow v1.0 (the extra write raced a client's update made with the create's resourceVersion: v1.0.1's TestSandboxVolumeClaimTemplatesImmutable)",
    ]),
  ]),
  'v1.0.1': Object.fromEntries(
    ['cold-claim', 'python-sandbox-warmpool-ADOPTED', 'python-sandbox-warmpool-MEMBER'].map((sb) => [
      `Sandbox/${sb}.annotations.agents.x-k8s.io/pod-name: upstream undefined ours "${sb}"`,
      "v1.0 still reads it (resolvePodName) but no longer writes it; v0.5.6's own e2e suite requires it on an adopted Sandbox before it is Ready (TestWarmPoolSandboxWatcher), so ours keeps writing it and passes both suites",
    ]),
  ),
};

/** Differences not yet closed (each with what is missing): none at the moment. */
const NOT_YET: Record<string, string> = {};

const VERSIONS = Object.keys(DELIBERATE_BY_VERSION);

type Obj = {
  kind: string;
  metadata: any;
  spec?: any;
  status?: any;
  reason?: string;
  involvedObject?: any;
  type?: string;
};

/** What of a cluster's objects is compared: no uids, times, versions, IPs or random suffixes. */
function snapshot(kubectl: (...a: string[]) => string): Record<string, unknown> {
  const list = (kind: string): Obj[] => JSON.parse(kubectl('get', kind, '-n', 'default', '-o', 'json')).items;
  const raw = [
    ...list('sandboxes.agents.x-k8s.io'),
    ...list('sandboxclaims.extensions.agents.x-k8s.io'),
    ...list('sandboxwarmpools.extensions.agents.x-k8s.io'),
    ...list('pods'),
    ...list('services'),
    ...list('persistentvolumeclaims'),
    ...list('sandboxtemplates.extensions.agents.x-k8s.io'),
    ...list('networkpolicies'),
  ];
  // Pool members are named <pool>-<random>: each becomes <pool>-MEMBER (or -ADOPTED once a
  // claim owns it), and so do its name hash (read from its status.selector) and every mention
  // of either; the claim's uid becomes CLAIM-UID.
  const renames = new Map<string, string>();
  for (const o of raw) {
    if (o.kind !== 'Sandbox' || !/^python-sandbox-warmpool-[a-z0-9]{5}$/.test(o.metadata.name)) continue;
    const adopted = o.metadata.ownerReferences?.some((r: any) => r.kind === 'SandboxClaim');
    renames.set(o.metadata.name, `python-sandbox-warmpool-${adopted ? 'ADOPTED' : 'MEMBER'}`);
    const hash = /=([0-9a-f]{8})$/.exec(o.status?.selector ?? '')?.[1];
    if (hash) renames.set(hash, `HASH-OF-${adopted ? 'ADOPTED' : 'MEMBER'}`);
  }
  for (const o of raw) if (o.kind === 'SandboxClaim') renames.set(o.metadata.uid, 'CLAIM-UID');
  const rename = (text: string) => {
    for (const [from, to] of renames) text = text.split(from).join(to);
    // Template hashes are opaque: each controller compares only values it wrote itself.
    return text
      .replace(/("agents\.x-k8s\.io\/sandbox-(?:pod-)?template-hash":)"[0-9a-f]{8}"/g, '$1"HASH"')
      .replace(/("agents\.x-k8s\.io\/(?:controller-first-observed-at|claim-first-ready-at)":)"[^"]+"/g, '$1"TIME"');
  };
  const out: Record<string, unknown> = {};
  for (const o of raw) {
    if (o.kind === 'Service' && o.metadata.name === 'kubernetes') continue;
    const m = o.metadata;
    const norm: Record<string, unknown> = {
      labels: m.labels,
      annotations: m.annotations,
      finalizers: m.finalizers,
      ownerReferences: m.ownerReferences?.map((r: any) => ({
        apiVersion: r.apiVersion,
        kind: r.kind,
        name: r.name,
        controller: r.controller,
        blockOwnerDeletion: r.blockOwnerDeletion,
      })),
    };
    if (o.kind === 'Pod') {
      const s = o.spec;
      norm.spec = {
        containers: s.containers.map((c: any) => ({
          name: c.name,
          image: c.image,
          ports: c.ports,
          env: c.env,
          volumeMounts: c.volumeMounts?.filter((v: any) => !v.name.startsWith('kube-api-access')),
          resources: c.resources,
        })),
        volumes: s.volumes?.filter((v: any) => !v.name.startsWith('kube-api-access')),
        hostname: s.hostname,
        subdomain: s.subdomain,
        restartPolicy: s.restartPolicy,
        runtimeClassName: s.runtimeClassName,
      };
    } else if (o.kind === 'Service') {
      norm.spec = { clusterIP: o.spec.clusterIP, selector: o.spec.selector, ports: o.spec.ports };
    } else if (o.kind === 'SandboxTemplate') {
      // Its labels (the name hash v1.0 puts there); its spec is the input, defaulted by each CRD.
    } else if (o.kind === 'NetworkPolicy') {
      norm.spec = o.spec;
    } else if (o.kind === 'PersistentVolumeClaim') {
      norm.spec = { accessModes: o.spec.accessModes, resources: o.spec.resources };
    } else {
      norm.spec = o.spec;
      const st = { ...o.status };
      if (st.podIPs) st.podIPs = `${st.podIPs.length} IPs`;
      if (st.sandbox?.podIPs) st.sandbox = { ...st.sandbox, podIPs: `${st.sandbox.podIPs.length} IPs` };
      // By type: their order in the list means nothing.
      if (st.conditions)
        st.conditions = Object.fromEntries(
          st.conditions.map((c: any) => [c.type, { status: c.status, reason: c.reason, message: c.message }]),
        );
      delete st.observedGeneration;
      norm.status = st;
    }
    out[rename(`${o.kind}/${m.name}`)] = JSON.parse(rename(JSON.stringify(norm)));
  }
  const events = JSON.parse(kubectl('get', 'events', '-n', 'default', '-o', 'json')).items as Obj[];
  const reasons = new Set(
    events
      .filter((e) => ['Sandbox', 'SandboxClaim', 'SandboxWarmPool'].includes(e.involvedObject.kind))
      .map((e) => `${e.involvedObject.kind} ${e.type} ${e.reason}`),
  );
  out.events = [...reasons].sort();
  return out;
}

/** Flat differences: `<object>: <path>: upstream <a> ours <b>`. */
function diff(up: unknown, ours: unknown, path: string, out: string[]): void {
  const isObj = (v: unknown) => v !== null && typeof v === 'object';
  if (Array.isArray(up) && Array.isArray(ours) && path.endsWith('events')) {
    for (const e of up) if (!ours.includes(e)) out.push(`${path}: upstream only: ${e}`);
    for (const e of ours) if (!up.includes(e)) out.push(`${path}: ours only: ${e}`);
    return;
  }
  if (isObj(up) && isObj(ours) && Array.isArray(up) === Array.isArray(ours)) {
    const keys = new Set([...Object.keys(up), ...Object.keys(ours)]);
    for (const k of [...keys].sort()) diff((up as any)[k], (ours as any)[k], path ? `${path}.${k}` : k, out);
    return;
  }
  if (JSON.stringify(up) !== JSON.stringify(ours))
    out.push(`${path}: upstream ${JSON.stringify(up)} ours ${JSON.stringify(ours)}`);
}

describe(
  `side by side with upstream ${VERSIONS.join(' and ')}: the same inputs make the same objects`,
  { timeout: 600_000 },
  () => {
    let ours: Harness;
    const upstreams: Array<{
      version: string;
      cluster: Cluster;
      stop: () => Promise<void>;
      apply: (yaml: string) => void;
    }> = [];

    before(async () => {
      let clusters: Cluster[];
      [ours, ...clusters] = await Promise.all([
        startHarness({ controllerArgs: ['--leader-elect=false'] }),
        ...VERSIONS.map(() => startCluster()),
      ]);
      for (const [i, version] of VERSIONS.entries()) {
        const cluster = clusters[i]!;
        installUpstreamCrds(cluster, version);
        const { stop } = await startUpstreamController(cluster, [], version);
        let n = 0;
        upstreams.push({
          version,
          cluster,
          stop,
          apply: (yaml) => {
            const f = `${cluster.dir}/in-${n++}.yaml`;
            writeFileSync(f, yaml);
            cluster.kubectl('apply', '-f', f);
          },
        });
      }
    });
    after(async () => {
      await Promise.all(upstreams.map((u) => u.stop()));
      await Promise.all([ours?.stop(), ...upstreams.map((u) => u.cluster.stop())]);
    });

    it('templates, a warm pool, a claim adopting from it, a cold claim, sandboxes with a Service, a VCT, and suspended', async (t) => {
      const all = [
        {
          kubectl: ours.cluster.kubectl,
          apply: (y: string) => {
            ours.apply(y);
          },
        },
        ...upstreams.map((u) => ({ kubectl: u.cluster.kubectl, apply: u.apply })),
      ];
      const get = (k: (...a: string[]) => string, ...a: string[]) => JSON.parse(k('get', ...a, '-o', 'json'));
      for (const c of all) c.apply(INPUTS);
      for (const c of all)
        await waitFor(
          'the pool to be ready',
          () =>
            get(c.kubectl, 'sandboxwarmpools.extensions.agents.x-k8s.io', 'python-sandbox-warmpool').status
              ?.readyReplicas === 2,
          120_000,
        );
      for (const c of all) c.apply(CLAIM);
      const claimReady = (k: (...a: string[]) => string, name: string) =>
        get(k, 'sandboxclaims.extensions.agents.x-k8s.io', name).status?.conditions?.some(
          (x: any) => x.type === 'Ready' && x.status === 'True',
        );
      for (const c of all)
        for (const name of ['warm-claim', 'cold-claim'])
          await waitFor(`claim ${name} to be Ready`, () => claimReady(c.kubectl, name), 60_000);
      for (const c of all)
        await waitFor(
          'the pool to refill',
          () =>
            get(c.kubectl, 'sandboxwarmpools.extensions.agents.x-k8s.io', 'python-sandbox-warmpool').status
              ?.readyReplicas === 2,
          60_000,
        );
      await new Promise((r) => setTimeout(r, 3000)); // let status writes settle everywhere
      const mine = snapshot(ours.cluster.kubectl);
      // (What is compared is there: a Managed template's policy, default or its own; none when Unmanaged.)
      assert.ok(mine['NetworkPolicy/python-runtime-template-network-policy'], 'the default policy');
      assert.ok(mine['NetworkPolicy/custom-policy-template-network-policy'], "a template's own rules");
      assert.equal(mine['NetworkPolicy/unmanaged-template-network-policy'], undefined);
      const unexpected: string[] = [];
      const gone: string[] = [];
      for (const u of upstreams) {
        const deliberate = { ...DELIBERATE, ...DELIBERATE_BY_VERSION[u.version] };
        const found: string[] = [];
        diff(snapshot(u.cluster.kubectl), mine, '', found);
        for (const d of found)
          t.diagnostic(
            `${u.version} ${d in deliberate ? 'deliberate' : d in NOT_YET ? 'not yet' : 'UNEXPECTED'}: ${d}`,
          );
        unexpected.push(...found.filter((d) => !(d in deliberate) && !(d in NOT_YET)).map((d) => `${u.version} ${d}`));
        gone.push(
          ...[...Object.keys(deliberate), ...Object.keys(NOT_YET)]
            .filter((d) => !found.includes(d))
            .map((d) => `${u.version} ${d}`),
        );
      }
      assert.deepEqual(unexpected, [], `differences from upstream not listed as deliberate:\n${unexpected.join('\n')}`);
      assert.deepEqual(
        gone,
        [],
        `listed differences no longer seen (remove them from DELIBERATE or its version's list):\n${gone.join('\n')}`,
      );
    });
  },
);
