// The registry of connectors, by the `kind` of a connection: the local engine (no connection, or
// { kind: 'local' }) and Kubernetes (`kubernetes({...})`) are registered here; another is added
// with registerConnector. A connector's module is loaded on first use (the Kubernetes one brings
// @kubernetes/client-node, which local-engine users never load).
import { InvalidError } from './errors.ts';
import type { Connector, ConnectorConfig } from './connector.ts';

type Load = (config: ConnectorConfig) => Connector | Promise<Connector>;

/** A module imported once: each `import()` goes through the loader's resolve step again, which
 *  under a loader with hooks (tsx runs them on a thread of their own) cost 3–7 ms a call, most
 *  of a warm claim's SDK side. */
function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
}
const engineModule = once(() => import('./engine-connector.ts'));
const kubernetesModule = once(() => import('./kubernetes.ts'));

const registry = new Map<string, Load>([
  ['local', async () => (await engineModule()).engineConnector],
  ['kubernetes', async (config) => (await kubernetesModule()).kubernetesConnector(config)],
]);

/** Adds (or replaces) the connector of `kind`: `connection: { kind, ... }` then goes to it. */
export function registerConnector(kind: string, load: Load): void {
  registry.set(kind, load);
}

/** The connector of a connection (the local engine's without one). */
export async function connectorFor(config: ConnectorConfig | undefined): Promise<Connector> {
  const kind = config?.kind ?? 'local';
  const load = registry.get(kind);
  if (!load) {
    throw new InvalidError(`no connector for connection kind "${kind}" (known: ${[...registry.keys()].join(', ')})`);
  }
  return load(config ?? { kind });
}
