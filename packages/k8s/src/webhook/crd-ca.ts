// Points our four CRDs' conversion at this controller's webhook and puts its CA in their
// caBundle, as upstream's controller does at start and at every certificate rotation. The
// webhook is reached by its Service in a cluster, or by a URL (a controller outside the cluster,
// or this project's single-machine test cluster: https://asb-webhook.local:PORT/convert).
import * as k8s from '@kubernetes/client-node';
import { KINDS, KIND_NAMES } from '@asb/api';
import { isTransient, retryTransient } from '../substrate/transient.ts';

export type WebhookTarget =
  { service: { name: string; namespace: string; port: number; path?: string } } | { url: string };

export const crdNames = (): string[] => KIND_NAMES.map((k) => `${KINDS[k].plural}.${KINDS[k].group}`);

export async function patchCrdConversion(kc: k8s.KubeConfig, caPem: string, target: WebhookTarget): Promise<void> {
  const api = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const clientConfig = {
    caBundle: Buffer.from(caPem).toString('base64'),
    ...('url' in target
      ? { url: target.url }
      : { service: { ...target.service, path: target.service.path ?? '/convert' } }),
  };
  for (const name of crdNames()) {
    // Read-modify-replace: a merge patch cannot drop the `service` of a former configuration
    // when switching to `url` (they are a union). A conflict reads again; a busy or
    // re-initializing API server (as right after CRDs are applied) is tried again for a while.
    await retryTransient(
      async () => {
        const crd = await api.readCustomResourceDefinition({ name });
        crd.spec.conversion = { strategy: 'Webhook', webhook: { conversionReviewVersions: ['v1'], clientConfig } };
        await api.replaceCustomResourceDefinition({ name, body: crd });
      },
      { forMs: PATCH_RETRY_MS, retryOn: (err) => (err as { code?: number }).code === 409 || isTransient(err) },
    );
  }
}

/** How long patching a CRD is tried again through conflicts and a busy API server. */
const PATCH_RETRY_MS = 30_000;
