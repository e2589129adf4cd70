// The OCI spec is where isolation is decided: these tests pin its defaults.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildOciSpec } from '../src/oci-spec.ts';
import { agentArgv, type SandboxRuntimeSpec } from '../src/drivers/runtime-spec.ts';
import { resolveImage } from '../src/images.ts';

const spec = (over: Partial<SandboxRuntimeSpec> = {}): SandboxRuntimeSpec => ({
  hostname: 'sb',
  rootfs: { dir: '/r', extraBinds: [] },
  workspaceDir: '/ws',
  agentDir: '/agent',
  image: resolveImage('python:3.13-slim'),
  env: { FOO: 'bar' },
  workingDir: '/app',
  limits: { memoryBytes: 256 * 1024 * 1024, cpuMillis: 500, pidsLimit: 64 },
  tmpfsBytes: 1024,
  ...over,
});

describe('buildOciSpec', () => {
  const oci = buildOciSpec(spec()) as any;

  it('makes the root read-only and mounts host paths read-only', () => {
    assert.equal(oci.root.readonly, true);
    const binds = oci.mounts.filter((m: any) => m.type === 'bind');
    const writable = binds.filter((m: any) => m.options.includes('rw')).map((m: any) => m.destination);
    assert.deepEqual(writable, ['/app']);
    for (const m of binds)
      if (m.destination !== '/app') assert.ok(m.options.includes('ro'), `${m.destination} must be read-only`);
  });

  it('exposes no host path outside the allow-list', () => {
    const sources = oci.mounts
      .filter((m: any) => m.type === 'bind')
      .map((m: any) => m.source)
      .sort();
    assert.deepEqual(sources, ['/agent', '/etc/alternatives', '/etc/ssl/certs', '/usr', '/ws']);
  });

  it('enforces memory, cpu and pids limits', () => {
    assert.equal(oci.linux.resources.memory.limit, 256 * 1024 * 1024);
    assert.equal(oci.linux.resources.cpu.quota / oci.linux.resources.cpu.period, 0.5);
    const nproc = oci.process.rlimits.find((r: any) => r.type === 'RLIMIT_NPROC');
    assert.deepEqual([nproc.soft, nproc.hard], [64, 64]);
    assert.ok(oci.linux.resources.pids.limit > 64, 'the host cgroup is a backstop above the sandbox limit');
  });

  it('runs without capabilities as an unprivileged user, in new namespaces including the network', () => {
    assert.deepEqual(oci.process.user, { uid: 1000, gid: 1000 });
    assert.deepEqual(oci.process.capabilities.bounding, []);
    assert.equal(oci.process.noNewPrivileges, true);
    assert.ok(oci.linux.namespaces.some((n: any) => n.type === 'network'));
  });

  it('builds the environment from the image and the template only', () => {
    const env = Object.fromEntries(oci.process.env.map((e: string) => e.split(/=(.*)/s).slice(0, 2)));
    assert.equal(env.FOO, 'bar');
    assert.equal(env.SANDBOX_BASE_DIR, '/app');
    assert.equal(env.HOME, '/home/sandbox');
    assert.equal(env.ASB_HOME, undefined);
    assert.equal(env.PWD, undefined);
  });

  it('passes the main command to the agent', () => {
    assert.deepEqual(agentArgv(['python3', '-c', 'x']).slice(-2), ['--main', '["python3","-c","x"]']);
    assert.ok(!agentArgv().includes('--main'));
  });

  it('starts the static Go agent as PID 1 (it reaps orphans itself), without node or asb-spawn', () => {
    assert.deepEqual(agentArgv(['python3', '-c', 'x'], true, '/.asb/asb-spawn', 'go'), [
      '/.asb/asb-agent',
      '--fd',
      '0',
      '--main',
      '["python3","-c","x"]',
    ]);
    assert.ok(!agentArgv(undefined, false, undefined, 'go').some((w) => w.includes('node')));
  });

  it('starts the node agent under asb-spawn, its PID 1 and process spawner', () => {
    assert.deepEqual(agentArgv(undefined, false, '/.asb/asb-spawn', 'node').slice(0, 4), [
      '/.asb/asb-spawn',
      '--init',
      '--',
      '/usr/bin/node',
    ]);
  });
});

describe('resolveImage', () => {
  it("maps the seeds' images to local images", () => {
    assert.equal(resolveImage('registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0').name, 'host-python');
    assert.equal(resolveImage('registry.k8s.io/agent-sandbox/python-runtime-sandbox:v0.1.0').isRuntimeServer, true);
    assert.equal(resolveImage('python:3.13-slim').name, 'host-python');
    assert.equal(resolveImage('python:3.13-slim').isRuntimeServer, false);
    assert.equal(resolveImage('ghcr.io/gke-demos/go-runtime-sandbox:latest').name, 'host-go');
    assert.equal(resolveImage('python-runtime-sandbox:latest').name, 'host-python');
    assert.equal(resolveImage('busybox').name, 'host-base');
  });

  it('refuses an unknown image with a message that says how to map it', () => {
    assert.throws(() => resolveImage('nginx:1.25'), /not available to the local engine.*ASB_IMAGE_MAP/s);
  });

  it('takes extra mappings from ASB_IMAGE_MAP', () => {
    assert.equal(resolveImage('myorg/py:1', { ASB_IMAGE_MAP: '{"myorg/py:*":"host-python"}' }).name, 'host-python');
  });
});
