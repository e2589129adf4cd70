// The pooled API clients (kube-config.ts) against a real HTTP server on loopback: a DELETE's
// DeleteOptions reach the server (Node's http client sends a DELETE body without a length unless
// told: the server then read the DELETE as bodiless, and the body as the next request on the
// kept-alive connection, answered "400 Bad Request").
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { PooledKubeConfig } from '../src/kube-config.ts';

describe('PooledKubeConfig', () => {
  const seen: Array<{ method: string; url: string; length?: string; body: string }> = [];
  // A self-signed certificate: the pooled keep-alive agent is the https one.
  const dir = mkdtempSync(join(tmpdir(), 'asb-kube-config-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const tls = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  rmSync(dir, { recursive: true, force: true });
  const server = https.createServer(tls, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, length: req.headers['content-length'], body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Success' }));
    });
  });
  after(() => {
    kc.closeConnections();
    server.close();
  });
  const kc = new PooledKubeConfig();

  it("sends a DELETE's body with its length, and the next request on the connection stays whole", async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    kc.loadFromOptions({
      clusters: [
        { name: 'c', server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true },
      ],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const api = kc.makeApiClient(k8s.CustomObjectsApi);
    const coords = { group: 'g.io', version: 'v1', namespace: 'ns', plural: 'things', name: 'a' };
    const options = {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      propagationPolicy: 'Foreground',
      preconditions: { uid: 'u1' },
    };
    for (let i = 0; i < 3; i++) {
      await api.deleteNamespacedCustomObject({ ...coords, body: options });
      await api.getNamespacedCustomObject(coords);
    }
    assert.equal(seen.length, 6, 'six requests, no stray one made of a body');
    for (const r of seen.filter((x) => x.method === 'DELETE')) {
      assert.equal(r.length, String(Buffer.byteLength(r.body)));
      assert.deepEqual(JSON.parse(r.body), options);
    }
    assert.deepEqual(
      seen.map((r) => r.method),
      ['DELETE', 'GET', 'DELETE', 'GET', 'DELETE', 'GET'],
    );
  });
});
