// operatingMode suspend and resume on a real node (node.ts), with the workspace on a PVC: our
// controller runs as a pod (kubectl apply -k deploy/install), the Sandbox's pod runs the Python
// runtime image under gVisor with a `volumeClaimTemplates` workspace mounted at /app (the
// runtime's base directory), bound to a static `local` PersistentVolume in the node's directory.
// Suspending deletes the pod (its containers stop on the node) and keeps the PVC; resuming makes
// a new pod, a fresh process, that finds the workspace as it was left. Both spellings: v1beta1's
// operatingMode and v1alpha1's replicas (through the conversion webhook).
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor, type Cluster } from './cluster.ts';
import type { RealNode } from './node.ts';
import { deploymentAvailable, realClusterSkip, startRealCluster, type RealCluster } from './real-cluster.ts';
import { CLUSTER_IMAGES, RUNTIME_IMAGES } from '../../scripts/runtime-images.ts';

const repo = new URL('../../', import.meta.url).pathname;
const RUNTIME = 'registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0';
const STORAGE_CLASS = 'asb-node-local';
const SANDBOX = 'workspace-sandbox';
const PVC = `workspace-${SANDBOX}`;
const SANDBOXES_V1BETA1 = 'sandboxes.v1beta1.agents.x-k8s.io';
const SANDBOXES_V1ALPHA1 = 'sandboxes.v1alpha1.agents.x-k8s.io';
/** The runtime image's user (images/runtime-python): the workspace must be its to write. */
const RUNTIME_UID = 1000;
/** What a process of the runtime leaves behind in memory and on the container's own filesystem. */
const SLEEPER = 'sleep 86400';
const NOTE = `the workspace survives a suspension ${Date.now()}\n`;

interface Condition {
  type: string;
  status: string;
  reason?: string;
  observedGeneration?: number;
}
interface Pod {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string; volumes?: Array<{ name: string; persistentVolumeClaim?: { claimName: string } }> };
  status: { phase?: string; podIP?: string; conditions?: Condition[] };
}
interface Sandbox {
  metadata: { generation: number };
  spec: { operatingMode?: string; replicas?: number };
  status?: { conditions?: Condition[]; podIPs?: string[] };
}

const condition = (o: { status?: { conditions?: Condition[] } } | undefined, type: string) =>
  o?.status?.conditions?.find((c) => c.type === type);

/** A process started by the runtime in a session of its own (the runtime kills a command's
 *  process group when the command ends), and a file on the container's own filesystem. */
const LEAVE_STATE = `import subprocess
subprocess.Popen("${SLEEPER}".split(), start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
open("/tmp/in-memory-marker", "w").write("x")`;

/** What the runtime sees: the processes with the marker's command line, the /tmp file, the note. */
const INSPECT = `import json, os
procs = []
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            procs.append(open("/proc/" + p + "/cmdline", "rb").read().replace(b"\\0", b" ").decode().strip())
        except OSError:
            pass
print(json.dumps({
    "sleepers": sum(1 for c in procs if c == "${SLEEPER}"),
    "tmp": os.path.exists("/tmp/in-memory-marker"),
    "note": open("/app/notes/note.txt").read() if os.path.exists("/app/notes/note.txt") else None,
    "bootId": open("/proc/sys/kernel/random/boot_id").read().strip(),
}))`;

describe(
  'operatingMode suspend and resume on a real node, the workspace on a PVC',
  {
    skip: realClusterSkip(),
    timeout: 1_800_000,
  },
  () => {
    let rc: RealCluster;
    let cluster: Cluster;
    let node: RealNode;
    const log = (m: string) => process.stderr.write(`${m}\n`);
    const get = <T>(...args: string[]) => rc.get<T>(...args);
    const find = <T>(...args: string[]): T | undefined => {
      try {
        return get<T>(...args);
      } catch (err) {
        if (/NotFound/.test(String((err as { stderr?: string }).stderr ?? err))) return undefined;
        throw err;
      }
    };
    const apply = (doc: object) => rc.apply(JSON.stringify(doc));
    const patch = (resource: string, spec: object) =>
      cluster.kubectl('patch', resource, SANDBOX, '--type', 'merge', '-p', JSON.stringify({ spec }));

    /** The runtime's API (upstream's, on :8888) at the pod's IP, which the host reaches. */
    const runtime = (pod: Pod) => `http://${pod.status.podIP}:8888`;
    const execute = async (pod: Pod, command: string) => {
      const res = await fetch(`${runtime(pod)}/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ command }),
        signal: AbortSignal.timeout(60_000),
      });
      const body = (await res.json()) as { stdout: string; stderr: string; exit_code: number };
      assert.equal(res.status, 200);
      assert.equal(body.exit_code, 0, body.stderr);
      return body.stdout;
    };
    // (shlex splits the command: the programs are quoted whole; they hold no single quote.)
    const python = (pod: Pod, code: string) => execute(pod, `python3 -c '${code}'`);
    const inspect = async (pod: Pod) =>
      JSON.parse(await python(pod, INSPECT)) as { sleepers: number; tmp: boolean; note: string | null; bootId: string };

    /** The Sandbox's pod once the Sandbox says Ready. */
    const readyPod = async (what: string) =>
      waitFor(
        `the Sandbox to be Ready (${what})`,
        () => {
          const sb = get<Sandbox>(SANDBOXES_V1BETA1, SANDBOX);
          if (condition(sb, 'Ready')?.status !== 'True') return undefined;
          const pod = find<Pod>('pod', SANDBOX);
          return pod?.status.podIP && pod.status.podIP === sb.status?.podIPs?.[0] ? pod : undefined;
        },
        300_000,
      );

    /** No container of the pod runs on the node, and its sandbox (gVisor's) is not ready. */
    const nothingRunsOnNode = (uid: string) =>
      !node.crictl('ps', '--label', `io.kubernetes.pod.uid=${uid}`, '-q').trim() &&
      !node.crictl('pods', '--label', `io.kubernetes.pod.uid=${uid}`, '--state', 'ready', '-q').trim();

    before(async () => {
      rc = await startRealCluster({ log, images: [RUNTIME_IMAGES[0], CLUSTER_IMAGES[0]] });
      ({ cluster, node } = rc);
    });

    after(() => rc?.stop());

    it('the controller runs as a pod (deploy/install); static local PVs on the node', async (t) => {
      const t0 = Date.now();
      cluster.kubectl('apply', '-k', `${repo}deploy/install`);
      await deploymentAvailable(rc, 'agent-sandbox-system', 'agent-sandbox-controller', 1);
      t.diagnostic(`controller available ${Date.now() - t0} ms after kubectl apply`);
      // No provisioner: the volumes are made here, on the node, each bound when a pod that needs
      // it is scheduled (WaitForFirstConsumer), as a local-volume cluster does it.
      apply({
        apiVersion: 'storage.k8s.io/v1',
        kind: 'StorageClass',
        metadata: { name: STORAGE_CLASS },
        provisioner: 'kubernetes.io/no-provisioner',
        volumeBindingMode: 'WaitForFirstConsumer',
      });
      for (let i = 0; i < 2; i++) {
        const path = join(node.dir, 'volumes', `pv-${i}`);
        mkdirSync(path, { recursive: true });
        chownSync(path, RUNTIME_UID, RUNTIME_UID);
        apply({
          apiVersion: 'v1',
          kind: 'PersistentVolume',
          metadata: { name: `node-local-pv-${i}` },
          spec: {
            capacity: { storage: '1Gi' },
            accessModes: ['ReadWriteOnce'],
            persistentVolumeReclaimPolicy: 'Retain',
            storageClassName: STORAGE_CLASS,
            local: { path },
            nodeAffinity: {
              required: {
                nodeSelectorTerms: [
                  { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node.name] }] },
                ],
              },
            },
          },
        });
      }
      // The conversion webhook serves (the replicas patched the CRDs with its certificate) before
      // the Sandbox's v1alpha1 spelling is used below.
      await waitFor(
        'the controller replicas to patch the CRDs',
        () => {
          const pods = get<{ items: Array<{ metadata: { name: string } }> }>(
            'pods',
            '-n',
            'agent-sandbox-system',
            '-l',
            'app=agent-sandbox-controller',
          ).items;
          return (
            pods.length > 0 &&
            pods.every((p) =>
              /CRDs patched/.test(cluster.kubectl('logs', '-n', 'agent-sandbox-system', p.metadata.name)),
            )
          );
        },
        120_000,
      );
    });

    let first: Pod;
    let volumeDir: string;
    let bootId: string;

    it('a gVisor Sandbox with a workspace PVC runs; a file uploaded through the runtime API lands on the volume', async (t) => {
      const t0 = Date.now();
      apply({
        apiVersion: 'agents.x-k8s.io/v1beta1',
        kind: 'Sandbox',
        metadata: { name: SANDBOX, namespace: 'default' },
        spec: {
          podTemplate: {
            spec: {
              runtimeClassName: 'gvisor',
              terminationGracePeriodSeconds: 1,
              containers: [
                {
                  name: 'runtime',
                  image: RUNTIME,
                  ports: [{ containerPort: 8888 }],
                  readinessProbe: { httpGet: { path: '/', port: 8888 }, periodSeconds: 1 },
                  volumeMounts: [{ name: 'workspace', mountPath: '/app' }],
                },
              ],
            },
          },
          volumeClaimTemplates: [
            {
              metadata: { name: 'workspace' },
              spec: {
                accessModes: ['ReadWriteOnce'],
                storageClassName: STORAGE_CLASS,
                resources: { requests: { storage: '1Gi' } },
              },
            },
          ],
        },
      });
      first = await readyPod('created');
      t.diagnostic(`Sandbox create → Ready ${Date.now() - t0} ms (image pull included)`);
      assert.equal(first.spec.nodeName, node.name);
      assert.equal(first.spec.volumes?.find((v) => v.name === 'workspace')?.persistentVolumeClaim?.claimName, PVC);
      const pvc = get<{ status: { phase: string }; spec: { volumeName: string } }>('pvc', PVC);
      assert.equal(pvc.status.phase, 'Bound');
      volumeDir = get<{ spec: { local: { path: string } } }>('pv', pvc.spec.volumeName).spec.local.path;
      assert.match(cluster.kubectl('exec', SANDBOX, '--', 'dmesg'), /Starting gVisor/);

      // upstream's POST /upload: multipart `file`, its filename the path under the base dir.
      const form = new FormData();
      form.append('file', new Blob([NOTE]), 'notes/note.txt');
      const res = await fetch(`${runtime(first)}/upload`, {
        method: 'POST',
        body: form,
        signal: AbortSignal.timeout(30_000),
      });
      assert.equal(res.status, 200, await res.text());
      // On the node, in the PersistentVolume's directory: gVisor's gofer wrote it there.
      assert.equal(readFileSync(join(volumeDir, 'notes', 'note.txt'), 'utf8'), NOTE);
      await python(first, LEAVE_STATE);
      const seen = await inspect(first);
      assert.deepEqual({ ...seen, bootId: undefined }, { sleepers: 1, tmp: true, note: NOTE, bootId: undefined });
      bootId = seen.bootId;
    });

    /** Suspends through `resource`'s spelling; asserts the pod and its containers are gone and the
     *  PVC stays; answers how long it took. */
    const suspend = async (t: TestContext, pod: Pod, resource: string, spec: object) => {
      const t0 = Date.now();
      patch(resource, spec);
      await waitFor(
        'the Sandbox to say Suspended with its pod gone',
        () => {
          // (Said for this generation: the controller has acted on the patch.)
          const sb = get<Sandbox>(SANDBOXES_V1BETA1, SANDBOX);
          const c = condition(sb, 'Suspended');
          return c?.status === 'True' && c.observedGeneration === sb.metadata.generation && !find<Pod>('pod', SANDBOX);
        },
        120_000,
      );
      const ms = Date.now() - t0;
      t.diagnostic(`suspend (${resource}): patch → Suspended=True, pod gone ${ms} ms`);
      const sb = get<Sandbox>(SANDBOXES_V1BETA1, SANDBOX);
      assert.equal(sb.spec.operatingMode, 'Suspended');
      assert.equal(get<Sandbox>(SANDBOXES_V1ALPHA1, SANDBOX).spec.replicas, 0);
      assert.deepEqual(
        { status: condition(sb, 'Ready')?.status, reason: condition(sb, 'Ready')?.reason },
        { status: 'False', reason: 'SandboxSuspended' },
      );
      assert.equal(sb.status?.podIPs, undefined);
      // The kubelet stopped its containers (gVisor's sandbox with them): none runs on the node.
      await waitFor(`no container of pod ${pod.metadata.uid} to run on the node`, () =>
        nothingRunsOnNode(pod.metadata.uid),
      );
      // The workspace stays: the PVC, still bound, and the note on the volume.
      assert.equal(get<{ status: { phase: string } }>('pvc', PVC).status.phase, 'Bound');
      assert.equal(readFileSync(join(volumeDir, 'notes', 'note.txt'), 'utf8'), NOTE);
    };

    /** Resumes; asserts a new pod (another UID, a fresh gVisor sandbox and process) with the
     *  workspace as it was. */
    const resume = async (t: TestContext, before: Pod, resource: string, spec: object) => {
      const t0 = Date.now();
      patch(resource, spec);
      const pod = await readyPod('resumed');
      t.diagnostic(`resume (${resource}): patch → Ready ${Date.now() - t0} ms`);
      assert.notEqual(pod.metadata.uid, before.metadata.uid);
      assert.equal(pod.spec.nodeName, node.name);
      const sb = get<Sandbox>(SANDBOXES_V1BETA1, SANDBOX);
      assert.equal(condition(sb, 'Suspended')?.reason, 'NotSuspended');
      const seen = await inspect(pod);
      // The file in the workspace is there; what lived in the old pod's memory and its own
      // filesystem is not, and gVisor booted another kernel.
      assert.equal(seen.note, NOTE);
      assert.equal(seen.sleepers, 0, 'no process of the old pod');
      assert.equal(seen.tmp, false, "the old container's /tmp file");
      assert.notEqual(seen.bootId, bootId);
      bootId = seen.bootId;
      return pod;
    };

    let second: Pod;

    it("suspends through v1beta1's operatingMode: pod deleted, containers stopped, PVC kept; resumes a new pod with the workspace", async (t) => {
      await suspend(t, first, SANDBOXES_V1BETA1, { operatingMode: 'Suspended' });
      second = await resume(t, first, SANDBOXES_V1BETA1, { operatingMode: 'Running' });
      // The new pod's process leaves its own state, for the next cycle to not find.
      await python(second, LEAVE_STATE);
      const seen = await inspect(second);
      assert.equal(seen.sleepers, 1);
      assert.equal(seen.tmp, true);
    });

    it("and again through v1alpha1's replicas (0, then 1), converted by the webhook", async (t) => {
      await suspend(t, second, SANDBOXES_V1ALPHA1, { replicas: 0 });
      const third = await resume(t, second, SANDBOXES_V1ALPHA1, { replicas: 1 });
      assert.notEqual(third.metadata.uid, first.metadata.uid);
      // The workspace is still the same volume, writable by the new process.
      await execute(third, 'python3 -c \'open("/app/notes/after.txt", "w").write("written after two resumes")\'');
      assert.equal(readFileSync(join(volumeDir, 'notes', 'after.txt'), 'utf8'), 'written after two resumes');
    });
  },
);
