// The CRDs' conversion webhook: a ConversionReview (apiextensions.k8s.io/v1) in, each object
// converted through the hub (packages/api/src/convert.ts: the one conversion the local engine
// uses too) to the desired version, a ConversionReview out. An object that cannot be converted
// fails the whole review with a message naming it, as the API server expects.
import { validateObject, withoutManagedFields, toHub, fromHub, VERSIONS, type AnyObject, type Version } from '@asb/api';

export interface ConversionReview {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'ConversionReview';
  request?: { uid: string; desiredAPIVersion: string; objects: unknown[] };
  response?: { uid: string; convertedObjects: unknown[]; result: { status: 'Success' | 'Failure'; message?: string } };
}

export function convertReview(
  review: ConversionReview,
  templateOfPool?: (ns: string, pool: string) => string | undefined,
): ConversionReview {
  const req = review.request;
  if (!req) throw new Error('not a ConversionReview request: no .request');
  const respond = (response: ConversionReview['response']) => ({
    apiVersion: 'apiextensions.k8s.io/v1' as const,
    kind: 'ConversionReview' as const,
    response,
  });
  const version = req.desiredAPIVersion.split('/')[1] as Version;
  if (!VERSIONS.includes(version))
    return respond({
      uid: req.uid,
      convertedObjects: [],
      result: { status: 'Failure', message: `unknown desiredAPIVersion ${req.desiredAPIVersion}` },
    });
  const converted: unknown[] = [];
  for (const raw of req.objects) {
    const o = raw as { kind?: string; metadata?: { namespace?: string; name?: string; creationTimestamp?: unknown } };
    // (managedFields are not looked at: they are put back as they came, below.)
    const v = validateObject(withoutManagedFields(raw));
    if (!v.ok) {
      return respond({
        uid: req.uid,
        convertedObjects: [],
        result: {
          status: 'Failure',
          message: `${o.kind} ${o.metadata?.namespace}/${o.metadata?.name}: ${v.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
        },
      });
    }
    const out = fromHub(toHub(v.object) as never, version, { templateOfPool }) as AnyObject & {
      metadata: Record<string, unknown>;
    };
    // The API server refuses a conversion that changes metadata beyond labels and annotations:
    // everything else (managedFields, finalizers, timestamps) goes back exactly as it came.
    const meta = { ...(o.metadata as Record<string, unknown>) };
    if (out.metadata.labels !== undefined) meta.labels = out.metadata.labels;
    else delete meta.labels;
    if (out.metadata.annotations !== undefined) meta.annotations = out.metadata.annotations;
    else delete meta.annotations;
    converted.push({ ...out, metadata: meta });
  }
  return respond({ uid: req.uid, convertedObjects: converted, result: { status: 'Success' } });
}
