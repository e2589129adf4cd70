// One watch on the benchmark's claims (labelled `bench=<label>`), shared by the KWOK and the
// real-node scenarios: each object is handed over with when it was seen. If the server ends the
// watch, a list catches up (its objects are handed over `byList`: timed a little late) and a new
// watch goes on from the list.
import * as k8s from '@kubernetes/client-node';

const GROUP = 'extensions.agents.x-k8s.io';

export async function watchBenchClaims(
  kc: k8s.KubeConfig,
  namespace: string,
  label: string,
  seen: (obj: any, at: number, byList: boolean) => void,
): Promise<{ stop(): void }> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  let ctl: AbortController | undefined;
  let stopped = false;
  const watch = async (resourceVersion?: string): Promise<void> => {
    ctl = await new k8s.Watch(kc).watch(
      `/apis/${GROUP}/v1beta1/namespaces/${namespace}/sandboxclaims`,
      { labelSelector: `bench=${label}`, ...(resourceVersion ? { resourceVersion } : {}) },
      (_type: string, obj: any) => seen(obj, performance.now(), false),
      () => {
        if (!stopped) void relist();
      },
    );
  };
  const relist = async (): Promise<void> => {
    const list = await api.listNamespacedCustomObject({
      group: GROUP,
      version: 'v1beta1',
      plural: 'sandboxclaims',
      namespace,
      labelSelector: `bench=${label}`,
    });
    for (const o of list.items) seen(o, performance.now(), true);
    await watch(list.metadata.resourceVersion);
  };
  await watch();
  return {
    stop() {
      stopped = true;
      ctl?.abort();
    },
  };
}
