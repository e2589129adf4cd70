// Upstream YAML through the engine: valid templates and sandboxes apply, invalid ones are refused
// with field paths and change nothing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Sandbox, apply, listTemplates, InvalidError } from '@asb/sdk';
import { startTestEngine, type TestEngine } from './harness.ts';

const seed002 = readFileSync(
  new URL('../../packages/api/test/fixtures/seed002-counter-template.yaml', import.meta.url),
  'utf8',
);

describe('apply', () => {
  let t: TestEngine;
  before(async () => {
    t = await startTestEngine();
  });
  after(async () => {
    await t?.stop();
  });

  it("applies seed 002's template unchanged, and its main process runs in the sandbox", async () => {
    assert.deepEqual(await apply(seed002, t.conn), [
      { kind: 'SandboxTemplate', name: 'python-counter-template', namespace: 'default', action: 'created' },
    ]);
    assert.ok((await listTemplates(t.conn)).some((x) => x.name === 'python-counter-template'));
    await using sb = await Sandbox.create({ ...t.conn, template: 'python-counter-template' });
    await new Promise((r) => setTimeout(r, 2500));
    const out = await sb.commands.output('main');
    assert.match(out.stdout, /Count: 0\nCount: 1\n/);
  });

  it('applies a template with limits that the sandbox then enforces', async () => {
    await apply(
      `apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxTemplate
metadata: { name: tiny }
spec:
  podTemplate:
    spec:
      containers:
      - name: c
        image: python:3.13-slim
        resources: { limits: { memory: 300Mi, cpu: 500m } }
`,
      t.conn,
    );
    await using sb = await Sandbox.create({ ...t.conn, template: 'tiny' });
    assert.equal((await sb.run('python3 -c "x=bytearray(100*1024*1024); print(len(x))"')).exitCode, 0);
    // 450 MiB is over the template's 300Mi: the allocation fails or the sandbox is stopped.
    const over = await sb
      .run('python3 -c "x=bytearray(450*1024*1024); x[::4096]=b\\"1\\"*len(x[::4096]); print(len(x))"')
      .then(
        (r) => r.exitCode,
        () => -1,
      );
    assert.notEqual(over, 0);
  });

  it('refuses invalid YAML with its line, and an invalid spec with the field', async () => {
    await assert.rejects(apply('kind: SandboxTemplate\nmetadata:\n  name: [oops\n', t.conn), (err: unknown) => {
      assert.ok(err instanceof InvalidError);
      assert.match(err.message, /line \d+:\d+/);
      return true;
    });
    await assert.rejects(
      apply(
        `apiVersion: agents.x-k8s.io/v1alpha1
kind: Sandbox
metadata: { name: bad }
spec:
  replicas: 3
  podTemplate: { spec: { containers: [ { name: c } ] } }
`,
        t.conn,
      ),
      (err: unknown) => {
        assert.ok(err instanceof InvalidError);
        assert.match(err.message, /spec\.replicas: must be 0 or 1/);
        assert.match(err.message, /spec\.podTemplate\.spec\.containers\[0\]\.image: image is required/);
        assert.ok(err.causes.some((c) => c.field === 'spec.replicas'));
        return true;
      },
    );
    assert.equal(
      (await Sandbox.list(t.conn)).some((s) => s.name === 'bad'),
      false,
    );
  });

  it('creates a Sandbox object applied as YAML, and an unknown image is a clear error', async () => {
    const [res] = await apply(
      `apiVersion: agents.x-k8s.io/v1alpha1
kind: Sandbox
metadata: { name: gvisor-test }
spec:
  podTemplate:
    spec:
      runtimeClassName: gvisor
      containers: [ { name: agent, image: "busybox:latest", command: ["sleep", "infinity"] } ]
`,
      t.conn,
    );
    assert.equal(res!.action, 'created');
    const sb = await Sandbox.connect('gvisor-test', t.conn);
    assert.match((await sb.run('dmesg | head -1')).stdout, /Starting gVisor/);
    await sb.kill();
    // An image the engine cannot pull (no registry is reachable here) is accepted, and reported
    // on the object's status as the kubelet reports it; the SDK's error names the image and why.
    await apply(
      `apiVersion: agents.x-k8s.io/v1alpha1
kind: Sandbox
metadata: { name: nginx }
spec: { podTemplate: { spec: { containers: [ { name: web, image: "nginx:1.25" } ] } } }
`,
      t.conn,
    );
    await assert.rejects(
      Sandbox.connect('nginx', t.conn),
      /ErrImagePull: Failed to pull image "docker\.io\/library\/nginx:1\.25": /,
    );
    assert.equal(
      (await Sandbox.connect('gvisor-test', { ...t.conn, waitReadyMs: 0 }).catch((e: Error) => e)).constructor.name,
      'NotFoundError',
    );
  });
});
