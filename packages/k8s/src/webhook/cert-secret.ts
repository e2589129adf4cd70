// One webhook certificate for every replica of the controller, kept in a Secret of its namespace
// (kubernetes.io/tls, with ca.crt), as controller-runtime's certificate rotator keeps it. The API
// server sends a conversion to whichever replica the Service picks, and trusts the CRDs' one
// caBundle: when each replica made its own CA, the last to start won the caBundle and every
// other replica's answers failed ("x509: certificate signed by unknown authority").
// Whoever finds the Secret missing, expiring, or without its names makes new certificates;
// a replica that loses that race (AlreadyExists, Conflict) takes the winner's. A renewal keeps the
// previous CA in ca.crt beside the new one, so replicas still serving the old certificate stay
// trusted until they read the new one.
import { X509Certificate } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { expiresSoon, makeServingCerts, type ServingCerts } from './certs.ts';
import { retryTransient } from '../substrate/transient.ts';

export interface CertSecretOptions {
  namespace: string;
  name: string;
  /** The names the certificate must carry (more may be there: another replica's). */
  dnsNames: string[];
  /** Renewed when it expires within this. */
  renewWithinMs: number;
}

export interface SharedCerts {
  certs: ServingCerts;
  /** The CAs the CRDs must trust: the certificate's, and the previous one after a renewal. */
  caBundle: string;
}

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g;

const code = (err: unknown) => (err as { code?: number }).code;

function dnsNamesOf(certPem: string): string[] {
  return (new X509Certificate(certPem).subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('DNS:'))
    .map((n) => n.slice(4));
}

function fromSecret(secret: k8s.V1Secret): SharedCerts | undefined {
  const text = (key: string) => {
    const b64 = secret.data?.[key];
    return b64 ? Buffer.from(b64, 'base64').toString() : undefined;
  };
  const certPem = text('tls.crt');
  const keyPem = text('tls.key');
  const caBundle = text('ca.crt');
  const caPem = caBundle?.match(PEM)?.[0];
  if (!certPem || !keyPem || !caBundle || !caPem) return undefined;
  try {
    const notAfter = new Date(new X509Certificate(certPem).validTo);
    return { certs: { certPem, keyPem, caPem, notAfter }, caBundle };
  } catch {
    return undefined; // not a certificate: made again
  }
}

/** The replicas' shared certificates: read from the Secret, or made (and stored) when it has
 *  none usable for `dnsNames`. */
export async function sharedServingCerts(kc: k8s.KubeConfig, o: CertSecretOptions): Promise<SharedCerts> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  for (let attempt = 0; ; attempt++) {
    const secret = await retryTransient(() =>
      core.readNamespacedSecret({ name: o.name, namespace: o.namespace }).catch((err: unknown) => {
        if (code(err) === 404) return undefined;
        throw err;
      }),
    );
    const current = secret && fromSecret(secret);
    const names = current ? dnsNamesOf(current.certs.certPem) : [];
    if (current && o.dnsNames.every((n) => names.includes(n)) && !expiresSoon(current.certs.certPem, o.renewWithinMs))
      return current;
    const certs = await makeServingCerts([...o.dnsNames, ...names.filter((n) => !o.dnsNames.includes(n))]);
    const shared = { certs, caBundle: certs.caPem + (current?.certs.caPem ?? '') };
    const body: k8s.V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: o.name,
        namespace: o.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'agent-sandbox-controller' },
        ...(secret?.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
      },
      type: 'kubernetes.io/tls',
      data: {
        'tls.crt': Buffer.from(certs.certPem).toString('base64'),
        'tls.key': Buffer.from(certs.keyPem).toString('base64'),
        'ca.crt': Buffer.from(shared.caBundle).toString('base64'),
      },
    };
    try {
      await retryTransient(() =>
        secret
          ? core.replaceNamespacedSecret({ name: o.name, namespace: o.namespace, body })
          : core.createNamespacedSecret({ namespace: o.namespace, body }),
      );
      return shared;
    } catch (err) {
      // Another replica wrote it first (409: AlreadyExists or Conflict): take what it wrote.
      if (code(err) !== 409 || attempt >= 5) throw err;
    }
  }
}
