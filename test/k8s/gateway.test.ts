// The SDK's Gateway mode (upstream's SandboxGatewayConnectionConfig) on the control plane: the
// Gateway API's own CRDs (v1.6.3, from the Go module proxy) on the real API server, our
// deploy/router and deploy/router/gateway manifests applied to it (so validated by those CRDs),
// and the SDK waiting by watch for the Gateway's address, then reaching our router there. No
// Gateway implementation runs here: the test plays its part, giving the Gateway an address
// (127.0.0.2) where our router listens on port 80, as a load balancer in front of it would.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, kubernetes } from '@asb/sdk';
import { startRouterToAgent, type RouterToAgent } from './router-to-agent.ts';
import { startHarness, waitFor, repo, type Harness } from './harness.ts';
import { gatewayApiCrdDir } from './cluster.ts';

const ROUTER_TOKEN = 'gateway-test-token';
const NS = 'agent-sandbox-system';
/** Where the Gateway's "load balancer" is: a loopback address of its own, on the Gateway's port. */
const GATEWAY_ADDRESS = '127.0.0.2';

describe('the SDK through a Gateway (Gateway API CRDs, our manifests, the address by watch)', { timeout: 600_000 }, () => {
  let h: Harness;
  let router: RouterToAgent | undefined;
  let cannotListen: string | undefined;

  before(async () => {
    // Port 80, as the Gateway's listener: needs root (CI runs as root).
    try { router = await startRouterToAgent({ token: ROUTER_TOKEN, host: GATEWAY_ADDRESS, port: 80 }); } catch (err) { cannotListen = (err as Error).message; }
    if (cannotListen) return;
    h = await startHarness({ controllerArgs: ['--leader-elect=false'] });
    const crds = gatewayApiCrdDir();
    for (const f of readdirSync(crds).filter((x) => /_(gatewayclasses|gateways|httproutes)\.yaml$/.test(x))) h.cluster.kubectl('apply', '--server-side', '-f', join(crds, f));
    h.cluster.kubectl('wait', '--for=condition=Established', '--timeout=60s', 'crd', 'gateways.gateway.networking.k8s.io', 'httproutes.gateway.networking.k8s.io');
    h.cluster.kubectl('apply', '-n', NS, '-k', join(repo, 'deploy/router'));
    h.cluster.kubectl('apply', '-n', NS, '-k', join(repo, 'deploy/router/gateway'));
    h.apply(readFileSync(join(repo, 'packages/api/test/fixtures/seed001-template-and-pool.yaml'), 'utf8'));
    await waitFor('2 ready pool members', () => h.get('sandboxwarmpools.extensions.agents.x-k8s.io', 'python-sandbox-warmpool').status?.readyReplicas === 2, 120_000);
  });
  after(async () => { router?.close(); await h?.stop(); });

  it('our Gateway and HTTPRoute are valid Gateway API objects, routing to the router Service', (t) => {
    if (cannotListen) { t.skip(`cannot listen on ${GATEWAY_ADDRESS}:80 (${cannotListen})`); return; }
    const route = h.get('httproute', 'sandbox-router-route', '-n', NS);
    assert.deepEqual(route.spec.parentRefs.map((p: any) => p.name), ['sandbox-router-gateway']);
    assert.deepEqual(route.spec.rules[0].backendRefs.map((b: any) => [b.name, b.port]), [['sandbox-router-svc', 8080]]);
    assert.equal(h.get('gateway', 'sandbox-router-gateway', '-n', NS).spec.listeners[0].port, 80);
    assert.equal(h.get('service', 'sandbox-router-svc', '-n', NS).spec.ports[0].port, 8080);
  });

  it('waits for the Gateway to have an address, then runs commands and moves files through it', async (t) => {
    if (cannotListen) { t.skip(`cannot listen on ${GATEWAY_ADDRESS}:80 (${cannotListen})`); return; }
    const connection = kubernetes({ kubeconfig: h.cluster.kubeconfig, routerToken: ROUTER_TOKEN, router: { gateway: { name: 'sandbox-router-gateway', namespace: NS } } });
    let addressed = false;
    const created = Sandbox.create({ connection, warmPool: 'python-sandbox-warmpool', timeoutMs: 60_000 }).then((sb) => { assert.ok(addressed, 'the SDK waited for the address'); return sb; });
    created.catch(() => undefined); // (awaited below; handled now so an early failure is not "unhandled")
    // The Gateway implementation's part: the address, a moment later.
    await new Promise((r) => setTimeout(r, 1500));
    addressed = true;
    execFileSync('kubectl', ['--kubeconfig', h.cluster.kubeconfig, '-n', NS, 'patch', 'gateway', 'sandbox-router-gateway', '--subresource=status', '--type=merge',
      '-p', JSON.stringify({ status: { addresses: [{ type: 'IPAddress', value: GATEWAY_ADDRESS }] } })], { encoding: 'utf8' });
    const sb = await created;
    const r = await sb.run('echo "$((6 * 7))" && echo err >&2; exit 3');
    assert.deepEqual(r, { stdout: '42\n', stderr: 'err\n', exitCode: 3 });
    await sb.files.write('via/gateway.txt', 'Gateway → router → agent');
    assert.equal(await sb.files.read('via/gateway.txt'), 'Gateway → router → agent');
    assert.ok(router!.requests() >= 3, `the calls went through the router at the Gateway's address (${router!.requests()} requests)`);
    await sb.kill();
    assert.equal(h.find('sandboxclaims.extensions.agents.x-k8s.io', sb.info.claim!), undefined);
  });
});
