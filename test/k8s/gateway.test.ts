// The SDK's Gateway mode (upstream's SandboxGatewayConnectionConfig) through a real Gateway API
// implementation: Traefik v3.6 (built from the Go module proxy, its Gateway provider watching the
// real API server) serves our deploy/router/gateway Gateway and HTTPRoute, sets the Gateway's
// address, and proxies to the router Service's endpoints, which the control plane's own
// EndpointSlice controller makes from the router Deployment's pods. The SDK waits by watch for
// that address, then goes client → Traefik → router → runtime agent.
//
// What stands in for a node: KWOK runs the router pods (they run nothing), so each pod's IP is
// added to this machine's loopback device and our router listens there, on the pod's port. That
// needs root (CI runs as root), as does Traefik's listener on port 80.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, kubernetes } from '@asb/sdk';
import { startRouterToAgent, type RouterToAgent } from './router-to-agent.ts';
import { startHarness, waitFor, repo, type Harness } from './harness.ts';
import { BIN, gatewayApiCrdDir } from './cluster.ts';

const ROUTER_TOKEN = 'gateway-test-token';
const NS = 'agent-sandbox-system';
/** Traefik's entry point: the address it gives the Gateway, on the Gateway listener's port. */
const GATEWAY_ADDRESS = '127.0.0.2';
/** deploy/router/gateway's class is GKE's; here Traefik implements it. */
const GATEWAY_CLASS = 'gke-l7-global-external-managed';

/** What Traefik's Gateway provider needs (its documented RBAC, less the OpenTelemetry pod read). */
const traefikAccess = `
apiVersion: v1
kind: ServiceAccount
metadata: { name: traefik, namespace: ${NS} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: asb-test-traefik }
rules:
  - { apiGroups: [""], resources: [namespaces], verbs: [list, watch] }
  - { apiGroups: [""], resources: [services, secrets, configmaps], verbs: [get, list, watch] }
  - { apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch] }
  - apiGroups: [gateway.networking.k8s.io]
    resources: [gatewayclasses, gateways, httproutes, grpcroutes, tcproutes, tlsroutes, referencegrants, backendtlspolicies]
    verbs: [get, list, watch]
  - apiGroups: [gateway.networking.k8s.io]
    resources: [gatewayclasses/status, gateways/status, httproutes/status, grpcroutes/status, tcproutes/status, tlsroutes/status, referencegrants/status, backendtlspolicies/status]
    verbs: [update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: asb-test-traefik }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: asb-test-traefik }
subjects: [{ kind: ServiceAccount, name: traefik, namespace: ${NS} }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: ${GATEWAY_CLASS} }
spec: { controllerName: traefik.io/gateway-controller }
`;

const condition = (conditions: any[] | undefined, type: string) => conditions?.find((c) => c.type === type);

describe(
  'the SDK through a Gateway (Traefik serving our Gateway and HTTPRoute on the real API server)',
  { timeout: 900_000 },
  () => {
    let h: Harness;
    let router: RouterToAgent | undefined;
    let traefik: ChildProcess | undefined;
    let podIPs: string[] = [];
    const addedToLoopback: string[] = [];
    let cannot: string | undefined;

    /** Starts Traefik: its Gateway provider on the API server, its entry point on the Gateway's port. */
    const startTraefik = () => {
      const token = h.cluster.kubectl('create', 'token', 'traefik', '-n', NS, '--duration', '1h').trim();
      const log = openSync(join(h.cluster.dir, 'traefik.log'), 'a');
      traefik = spawn(
        join(BIN, 'traefik'),
        [
          `--entryPoints.web.address=${GATEWAY_ADDRESS}:80`,
          '--providers.kubernetesgateway=true',
          `--providers.kubernetesgateway.endpoint=${h.cluster.server}`,
          `--providers.kubernetesgateway.token=${token}`,
          `--providers.kubernetesgateway.certauthfilepath=${join(h.cluster.dir, 'ca.crt')}`,
          `--providers.kubernetesgateway.statusaddress.ip=${GATEWAY_ADDRESS}`,
          '--accesslog=true',
          `--accesslog.filepath=${join(h.cluster.dir, 'traefik-access.log')}`,
          '--global.checknewversion=false',
          '--global.sendanonymoususage=false',
          '--log.level=INFO',
        ],
        { stdio: ['ignore', log, log] },
      );
    };
    const accessLog = () => {
      try {
        return readFileSync(join(h.cluster.dir, 'traefik-access.log'), 'utf8');
      } catch {
        return '';
      }
    };

    before(async () => {
      h = await startHarness({ controllerArgs: ['--leader-elect=false'] });
      // All the standard CRDs: Traefik watches ReferenceGrants, GRPCRoutes and BackendTLSPolicies too.
      const crds = gatewayApiCrdDir();
      for (const f of readdirSync(crds).filter(
        (x) => x.endsWith('.yaml') && x.startsWith('gateway.networking.k8s.io_'),
      ))
        h.cluster.kubectl('apply', '--server-side', '-f', join(crds, f));
      h.cluster.kubectl(
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        'crd',
        'gateways.gateway.networking.k8s.io',
        'httproutes.gateway.networking.k8s.io',
      );
      h.cluster.kubectl('apply', '-n', NS, '-k', join(repo, 'deploy/router'));
      h.cluster.kubectl('apply', '-n', NS, '-k', join(repo, 'deploy/router/gateway'));
      h.apply(traefikAccess);
      // The router Deployment's pods (KWOK's), and the endpoints the control plane made of them.
      await waitFor(
        "the router pods to be ready in the Service's endpoints",
        () => {
          const slices = h.get('endpointslices', '-n', NS, '-l', 'kubernetes.io/service-name=sandbox-router-svc')
            .items as any[];
          const ready = slices.flatMap((s) =>
            (s.endpoints ?? []).filter((e: any) => e.conditions?.ready).flatMap((e: any) => e.addresses),
          );
          return ready.length === 2 && (podIPs = ready);
        },
        120_000,
      );
      try {
        for (const ip of podIPs) {
          execFileSync('ip', ['addr', 'add', `${ip}/32`, 'dev', 'lo'], { stdio: 'pipe' });
          addedToLoopback.push(ip);
        }
        router = await startRouterToAgent({
          token: ROUTER_TOKEN,
          host: podIPs[0],
          port: 8080,
          moreHosts: podIPs.slice(1),
        });
      } catch (err) {
        cannot = (err as Error).message;
        return;
      }
      h.apply(readFileSync(join(repo, 'packages/api/test/fixtures/seed001-template-and-pool.yaml'), 'utf8'));
      await waitFor(
        '2 ready pool members',
        () =>
          h.get('sandboxwarmpools.extensions.agents.x-k8s.io', 'python-sandbox-warmpool').status?.readyReplicas === 2,
        120_000,
      );
    });
    after(async () => {
      traefik?.kill('SIGKILL');
      router?.close();
      for (const ip of addedToLoopback) {
        try {
          execFileSync('ip', ['addr', 'del', `${ip}/32`, 'dev', 'lo'], { stdio: 'pipe' });
        } catch {
          /* gone already */
        }
      }
      await h?.stop();
    });

    it('waits for the Gateway to have an address, then runs commands and moves files through Traefik and the router', async (t) => {
      if (cannot) {
        t.skip(`cannot put the router on the pods' addresses (${cannot})`);
        return;
      }
      const connection = kubernetes({
        kubeconfig: h.cluster.kubeconfig,
        routerToken: ROUTER_TOKEN,
        router: { gateway: { name: 'sandbox-router-gateway', namespace: NS } },
      });
      assert.equal(
        h.get('gateway', 'sandbox-router-gateway', '-n', NS).status?.addresses,
        undefined,
        'no address before Traefik runs',
      );
      let traefikStarted = false;
      const created = Sandbox.create({ connection, warmPool: 'python-sandbox-warmpool', timeoutMs: 120_000 }).then(
        (sb) => {
          assert.ok(traefikStarted, 'the SDK waited for the address');
          return sb;
        },
      );
      created.catch(() => undefined); // (awaited below; handled now so an early failure is not "unhandled")
      await new Promise((r) => setTimeout(r, 1500));
      traefikStarted = true;
      startTraefik();
      const sb = await created;
      const r = await sb.run('echo "$((6 * 7))" && echo err >&2; exit 3');
      assert.deepEqual(r, { stdout: '42\n', stderr: 'err\n', exitCode: 3 });
      await sb.files.write('via/gateway.txt', 'Gateway → router → agent');
      assert.equal(await sb.files.read('via/gateway.txt'), 'Gateway → router → agent');
      // Traefik logged the calls, each sent on to a router pod's endpoint.
      const proxied = accessLog()
        .split('\n')
        .filter((l) => podIPs.some((ip) => l.includes(`http://${ip}:8080`)));
      assert.ok(
        proxied.length >= 3,
        `Traefik proxied the calls to the router pods (${proxied.length} of them in its access log)`,
      );
      assert.ok(router!.requests() >= proxied.length, `the router received them (${router!.requests()} requests)`);
      await sb.kill();
      assert.equal(h.find('sandboxclaims.extensions.agents.x-k8s.io', sb.info.claim!), undefined);
    });

    it('Traefik accepted our Gateway and HTTPRoute and resolved the route to the router Service', (t) => {
      if (cannot) {
        t.skip(`cannot put the router on the pods' addresses (${cannot})`);
        return;
      }
      const gw = h.get('gateway', 'sandbox-router-gateway', '-n', NS);
      assert.deepEqual(gw.status.addresses, [{ type: 'IPAddress', value: GATEWAY_ADDRESS }]);
      for (const type of ['Accepted', 'Programmed'])
        assert.equal(
          condition(gw.status.conditions, type)?.status,
          'True',
          `Gateway ${type}: ${JSON.stringify(condition(gw.status.conditions, type))}`,
        );
      const route = h.get('httproute', 'sandbox-router-route', '-n', NS);
      const parent = route.status.parents.find((p: any) => p.parentRef.name === 'sandbox-router-gateway');
      for (const type of ['Accepted', 'ResolvedRefs'])
        assert.equal(
          condition(parent?.conditions, type)?.status,
          'True',
          `HTTPRoute ${type}: ${JSON.stringify(condition(parent?.conditions, type))}`,
        );
    });

    it('a wrong router token is refused through the Gateway, by the router', async (t) => {
      if (cannot) {
        t.skip(`cannot put the router on the pods' addresses (${cannot})`);
        return;
      }
      const res = await fetch(`http://${GATEWAY_ADDRESS}/execute`, {
        method: 'POST',
        headers: {
          authorization: 'Bearer wrong',
          'x-sandbox-id': 'any',
          'x-sandbox-namespace': 'default',
          'content-type': 'application/json',
        },
        body: '{"command":"true"}',
      });
      assert.equal(res.status, 401, await res.text());
    });
  },
);
