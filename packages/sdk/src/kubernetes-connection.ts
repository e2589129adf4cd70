// The options of the Kubernetes connector (`connection: kubernetes({...})`): plain data, so that
// naming a cluster loads nothing of it; the connector (kubernetes.ts) is loaded on first use.
export interface KubernetesConnection {
  kind: 'kubernetes';
  /** A kubeconfig file. @default $KUBECONFIG, ~/.kube/config, or the in-cluster service account */
  kubeconfig?: string;
  context?: string;
  /** Where the sandbox router is. @default port-forward to svc/sandbox-router-svc:8080 in the
   *  sandbox's namespace (as upstream's clients), or in agent-sandbox-system when it has none there */
  router?: RouterAddress;
  /** The router's bearer token (ROUTER_AUTH_TOKEN). @default env ASB_ROUTER_TOKEN */
  routerToken?: string;
}

export type RouterAddress =
  | { url: string }
  | { gateway: { name: string; namespace?: string } }
  | { portForward: { service?: string; namespace?: string; port?: number } };

/** Connection options for a cluster: `Sandbox.create({ connection: kubernetes({ router: { url } }) })`. */
export function kubernetes(opts: Omit<KubernetesConnection, 'kind'> = {}): KubernetesConnection {
  return { kind: 'kubernetes', ...opts };
}
