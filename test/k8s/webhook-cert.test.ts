// The conversion webhook's certificate, shared by the controller's replicas through a Secret, on a
// real API server: replicas starting at once all end with the same certificate (one made it, the
// others took it), a renewal keeps the previous CA trusted beside the new one, and a replica that
// needs a name the certificate lacks gets one carrying both its names and the others'.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { loadKubeConfig } from '@asb/kube';
import { sharedServingCerts } from '../../packages/k8s/src/webhook/cert-secret.ts';
import { startCluster, type Cluster } from './cluster.ts';

const NAMES = ['agent-sandbox-webhook-service.agent-sandbox-system.svc', 'asb-webhook.local'];

describe("the webhook's certificate, one Secret for every replica", { timeout: 120_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster();
    cluster.kubectl('create', 'namespace', 'agent-sandbox-system');
  });
  after(() => cluster?.stop());

  const opts = (name: string, dnsNames = NAMES, renewWithinMs = 30 * 86_400_000) => ({
    namespace: 'agent-sandbox-system',
    name,
    dnsNames,
    renewWithinMs,
  });

  it('replicas starting at once share one certificate, and the Secret holds it', async () => {
    const kc = loadKubeConfig({ kubeconfig: cluster.kubeconfig });
    const got = await Promise.all([1, 2, 3, 4].map(() => sharedServingCerts(kc, opts('together'))));
    assert.equal(new Set(got.map((g) => g.certs.certPem)).size, 1, 'one certificate for all');
    assert.equal(new Set(got.map((g) => g.caBundle)).size, 1);
    const secret = JSON.parse(
      cluster.kubectl('get', 'secret', 'together', '-n', 'agent-sandbox-system', '-o', 'json'),
    ) as { type: string; data: Record<string, string> };
    assert.equal(secret.type, 'kubernetes.io/tls');
    assert.equal(Buffer.from(secret.data['tls.crt']!, 'base64').toString(), got[0]!.certs.certPem);
    // The certificate is the CA's, for the webhook's names.
    const cert = new X509Certificate(got[0]!.certs.certPem);
    assert.ok(cert.verify(new X509Certificate(got[0]!.certs.caPem).publicKey));
    for (const n of NAMES) assert.ok(cert.checkHost(n), n);
    // A later replica reads it rather than making another.
    const later = await sharedServingCerts(kc, opts('together'));
    assert.equal(later.certs.certPem, got[0]!.certs.certPem);
  });

  it('a renewal makes a new certificate and keeps the previous CA in the bundle', async () => {
    const kc = loadKubeConfig({ kubeconfig: cluster.kubeconfig });
    const first = await sharedServingCerts(kc, opts('renewed'));
    // "Expires within 400 days": a year's certificate is due.
    const second = await sharedServingCerts(kc, opts('renewed', NAMES, 400 * 86_400_000));
    assert.notEqual(second.certs.certPem, first.certs.certPem);
    assert.notEqual(second.certs.caPem, first.certs.caPem);
    assert.equal(second.caBundle, second.certs.caPem + first.certs.caPem, 'the new CA, then the one before it');
    // Only the one before: a third renewal drops the first CA.
    const third = await sharedServingCerts(kc, opts('renewed', NAMES, 400 * 86_400_000));
    assert.equal(third.caBundle, third.certs.caPem + second.certs.caPem);
  });

  it('a replica that needs another name gets a certificate with every name', async () => {
    const kc = loadKubeConfig({ kubeconfig: cluster.kubeconfig });
    const one = await sharedServingCerts(kc, opts('names', [NAMES[0]!]));
    const two = await sharedServingCerts(kc, opts('names', [NAMES[1]!]));
    assert.notEqual(two.certs.certPem, one.certs.certPem);
    const cert = new X509Certificate(two.certs.certPem);
    for (const n of NAMES) assert.ok(cert.checkHost(n), n);
    // And the first replica, reading again, keeps it (its name is there).
    assert.equal((await sharedServingCerts(kc, opts('names', [NAMES[0]!]))).certs.certPem, two.certs.certPem);
  });
});
