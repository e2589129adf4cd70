// The registry of connectors, by the `kind` of a connection: the local engine (no connection, or
// { kind: 'local' }) and Kubernetes (`kubernetes({...})`) are registered here; another is added
// with registerConnector. A connector's module is loaded on first use (the Kubernetes one brings
// @kubernetes/client-node, which local-engine users never load).
import { InvalidError } from './errors.ts';
import type { Connector, ConnectorConfig } from './connector.ts';

type Load = (config: ConnectorConfig) => Connector | Promise<Connector>;

const registry = new Map<string, Load>([
  ['local', async () => (await import('./engine-connector.ts')).engineConnector],
  ['kubernetes', async (config) => (await import('./kubernetes.ts')).kubernetesConnector(config)],
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
