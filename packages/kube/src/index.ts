// @asb/kube: what every client of a Kubernetes API server here shares, and nothing else: a
// kubeconfig whose API clients pool their connections, and what a failed API call means. A leaf:
// the SDK's Kubernetes connector and the controller (@asb/k8s) both import it, neither imports
// the other.
export { loadKubeConfig, PooledKubeConfig } from './kube-config.ts';
export {
  readKubeApiError,
  mapKubeApiError,
  type KubeFailure,
  type KubeApiFailure,
  type KubeErrorTable,
} from './api-error.ts';
