// A KubeConfig whose API clients share one pool of kept-alive connections.
//
// @kubernetes/client-node 1.x makes a new https.Agent for every request (config.js,
// applySecurityAuthentication), so every call opens a TCP connection and does a full TLS
// handshake, on both ends: under a burst of claims that was about 40% of our controller's CPU
// (a V8 profile of `npm run bench:k8s`), and it costs the API server as much again. Reusing one
// keep-alive agent under its default HTTP library (node-fetch 2) is not enough: node-fetch's
// check for truncated chunked bodies misfires on a reused socket and fails good responses with
// "Premature close" (node-fetch/node-fetch#1767), which under load lost creates. So API clients
// made here send through node:https directly, with one agent per set of TLS options (CA, client
// certificate and key, server name: when a credential plugin rotates the certificate, the next
// call gets a new pool). Watches keep the library's own path (long-lived, one connection each).
import * as http from 'node:http';
import * as https from 'node:https';
import * as k8s from '@kubernetes/client-node';

/** Connections kept per API server: enough for the controller's workers. */
const MAX_SOCKETS = 64;

/** One request and its whole response, over the given agent (no body streaming: API objects). */
function send(request: k8s.RequestContext): Promise<k8s.ResponseContext> {
  const url = new URL(request.getUrl());
  const body = request.getBody();
  if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body))
    return Promise.reject(new Error('kube-config: only string and Buffer request bodies are sent'));
  const client = url.protocol === 'http:' ? http : https;
  // Said explicitly: for DELETE, node:http sends a body with neither Content-Length nor chunked
  // encoding, so the server reads the DELETE as bodiless (its DeleteOptions lost: propagation,
  // uid preconditions) and the body's bytes as the next request on the kept-alive connection.
  const headers = { ...request.getHeaders() };
  if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: request.getHttpMethod(),
        headers,
        agent: request.getAgent(),
        signal: request.getSignal(),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const data = Buffer.concat(chunks);
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve(
            new k8s.ResponseContext(res.statusCode ?? 0, headers, {
              text: async () => data.toString('utf8'),
              binary: async () => data,
            }),
          );
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export class PooledKubeConfig extends k8s.KubeConfig {
  private pool?: { key: string; agent: https.Agent };

  override makeApiClient<T extends k8s.ApiType>(apiClientType: k8s.ApiConstructor<T>): T {
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error('No active cluster!');
    return new apiClientType(
      k8s.createConfiguration({
        baseServer: new k8s.ServerConfiguration(cluster.server, {}),
        authMethods: { default: this },
        httpApi: k8s.wrapHttpLibrary({ send }),
      }),
    );
  }

  override async applySecurityAuthentication(context: k8s.RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getAgent();
    // Only a plain https.Agent: a proxy's agent (a subclass) and plain http are left as made.
    if (!fresh || fresh.constructor !== https.Agent || this.getCurrentCluster()?.proxyUrl) return;
    const o = (fresh as https.Agent & { options: https.AgentOptions }).options;
    const key = JSON.stringify(
      [o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername].map((v) =>
        Buffer.isBuffer(v) ? v.toString('base64') : v,
      ),
    );
    if (this.pool?.key !== key) {
      this.pool?.agent.destroy();
      this.pool = {
        key,
        agent: new https.Agent({
          ...o,
          keepAlive: true,
          maxSockets: MAX_SOCKETS,
          maxFreeSockets: MAX_SOCKETS,
          scheduling: 'lifo',
        }),
      };
    }
    context.setAgent(this.pool.agent);
  }

  /** Closes the kept-alive connections (a process that stops its clients can then exit). */
  closeConnections(): void {
    this.pool?.agent.destroy();
    this.pool = undefined;
  }
}

/** A kubeconfig from a file, or the default chain ($KUBECONFIG, ~/.kube/config, in-cluster). */
export function loadKubeConfig(opts: { kubeconfig?: string; context?: string } = {}): PooledKubeConfig {
  const kc = new PooledKubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else kc.loadFromDefault();
  if (opts.context) kc.setCurrentContext(opts.context);
  return kc;
}
