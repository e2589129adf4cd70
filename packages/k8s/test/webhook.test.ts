// The conversion webhook over real TLS: a client that trusts only the CA the controller made
// reaches it by the DNS name in the certificate, and gets ConversionReviews answered.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { makeServingCerts, expiresSoon, type ServingCerts } from '../src/webhook/certs.ts';
import { serveWebhook, type WebhookServer } from '../src/webhook/server.ts';

const NAME = 'asb-webhook.local';

function post(port: number, ca: string, body: unknown, servername = NAME): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/convert',
        method: 'POST',
        ca,
        servername,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const sandboxV1alpha1 = {
  apiVersion: 'agents.x-k8s.io/v1alpha1',
  kind: 'Sandbox',
  metadata: {
    name: 'sb',
    namespace: 'default',
    uid: 'u1',
    resourceVersion: '7',
    generation: 2,
    creationTimestamp: '2026-11-24T00:00:00Z',
    managedFields: [{ manager: 'kubectl' }],
    labels: { a: 'b' },
  },
  spec: { replicas: 0, podTemplate: { spec: { containers: [{ name: 'main', image: 'python:3.13-slim' }] } } },
};

describe('conversion webhook', () => {
  let certs: ServingCerts;
  let server: WebhookServer;
  before(async () => {
    certs = await makeServingCerts([NAME, 'agent-sandbox-webhook-service.agent-sandbox-system.svc']);
    server = await serveWebhook(certs, { host: '127.0.0.1', port: 0 });
  });
  after(() => server.close());

  it("makes a CA and a serving certificate for the webhook's names, valid a year", () => {
    assert.match(certs.caPem, /BEGIN CERTIFICATE/);
    assert.match(certs.keyPem, /BEGIN PRIVATE KEY/);
    assert.equal(expiresSoon(certs.certPem, 300 * 86_400_000), false);
    assert.equal(expiresSoon(certs.certPem, 400 * 86_400_000), true);
  });

  it('converts v1alpha1 to v1beta1 and back, keeping metadata other than labels and annotations exactly', async () => {
    const down = await post(server.port, certs.caPem, {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'ConversionReview',
      request: { uid: 'r1', desiredAPIVersion: 'agents.x-k8s.io/v1beta1', objects: [sandboxV1alpha1] },
    });
    assert.equal(down.status, 200);
    assert.equal(down.body.response.uid, 'r1');
    assert.equal(down.body.response.result.status, 'Success');
    const beta = down.body.response.convertedObjects[0];
    assert.equal(beta.apiVersion, 'agents.x-k8s.io/v1beta1');
    assert.equal(beta.spec.operatingMode, 'Suspended');
    assert.equal('replicas' in beta.spec, false);
    assert.deepEqual(beta.metadata.managedFields, [{ manager: 'kubectl' }]);
    assert.equal(beta.metadata.resourceVersion, '7');
    const up = await post(server.port, certs.caPem, {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'ConversionReview',
      request: { uid: 'r2', desiredAPIVersion: 'agents.x-k8s.io/v1alpha1', objects: [beta] },
    });
    assert.equal(up.body.response.convertedObjects[0].spec.replicas, 0);
  });

  it('fails a review with an object it cannot read, naming it', async () => {
    const bad = await post(server.port, certs.caPem, {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'ConversionReview',
      request: {
        uid: 'r3',
        desiredAPIVersion: 'agents.x-k8s.io/v1beta1',
        objects: [{ ...sandboxV1alpha1, spec: { replicas: 5 } }],
      },
    });
    assert.equal(bad.body.response.result.status, 'Failure');
    assert.match(bad.body.response.result.message, /Sandbox default\/sb/);
  });

  it('is trusted only through its CA and only under its names; rotation serves the new certificate', async () => {
    const other = await makeServingCerts([NAME]);
    await assert.rejects(post(server.port, other.caPem, {}), /self-signed|unable to verify|certificate/i);
    await assert.rejects(post(server.port, certs.caPem, {}, 'evil.example'), /altnames|Hostname/i);
    server.setCerts(other);
    const ok = await post(server.port, other.caPem, {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'ConversionReview',
      request: { uid: 'r4', desiredAPIVersion: 'agents.x-k8s.io/v1beta1', objects: [] },
    });
    assert.equal(ok.body.response.result.status, 'Success');
  });
});
