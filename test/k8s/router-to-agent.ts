// Our router in front of our runtime agent, both on this machine: what the router-mode tests put
// where a cluster's router Deployment (and the sandbox pods behind it) would be. KWOK's pods run
// nothing, so the router is told where the agent is.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type http from 'node:http';
import { configFromEnv, createAgent, requestHandler, serveHttp1 } from '@asb/runtime';
import { createRouter } from '../../packages/k8s/src/router/router.ts';

export interface RouterToAgent {
  /** Requests the router has received. */
  requests(): number;
  close(): void;
}

/**
 * Listens on host:port (port 0: any), and on each of `moreHosts` at the same port: as many router
 * replicas, all in front of the one agent (the router holds no state of its own). Rejects when it
 * cannot listen (e.g. port 80 without root).
 */
export async function startRouterToAgent(opts: {
  token: string;
  host?: string;
  port?: number;
  moreHosts?: string[];
}): Promise<RouterToAgent> {
  const baseDir = mkdtempSync(join(tmpdir(), 'asb-router-agent-'));
  const env = { PATH: process.env.PATH, SANDBOX_BASE_DIR: baseDir, HOME: baseDir };
  const agent = await serveHttp1(
    await requestHandler(createAgent(configFromEnv(env), undefined, env).app),
    '127.0.0.1',
    0,
  );
  const routers: http.Server[] = [];
  let requests = 0;
  const close = () => {
    for (const router of routers) {
      router.closeAllConnections();
      router.close();
    }
    agent.server.closeAllConnections();
    agent.server.close();
    rmSync(baseDir, { recursive: true, force: true });
  };
  try {
    for (const host of [opts.host ?? '127.0.0.1', ...(opts.moreHosts ?? [])]) {
      const router = createRouter({ token: opts.token, backend: { host: '127.0.0.1', port: agent.port } });
      router.on('request', () => {
        requests++;
      });
      routers.push(router);
      await new Promise<void>((resolve, reject) => {
        router.once('error', reject);
        router.listen(opts.port ?? 0, host, resolve);
      });
    }
  } catch (err) {
    close();
    throw err;
  }
  return { requests: () => requests, close };
}
