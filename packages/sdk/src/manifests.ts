// Objects in the engine: apply upstream YAML (SandboxTemplate, Sandbox) and list templates.
import { callJson, resolveConnection, type ConnectionOpts } from './connection.ts';

export interface ApplyResult {
  kind: string;
  name: string;
  namespace: string;
  action: 'created' | 'configured' | 'unchanged';
}
export interface TemplateInfo {
  name: string;
  namespace: string;
  image?: string;
  createdAt: string;
}

/** Applies a YAML (or JSON) manifest; invalid documents are refused whole, with field paths. */
export async function apply(
  manifest: string,
  opts: ConnectionOpts & { format?: 'yaml' | 'json' } = {},
): Promise<ApplyResult[]> {
  const conn = resolveConnection(opts);
  const res = await callJson<{ items: ApplyResult[] }>(conn, '/v1/apply', 'apply the manifest', {
    method: 'POST',
    body: manifest,
    headers: { 'content-type': opts.format === 'json' ? 'application/json' : 'application/yaml' },
    timeoutMs: 300_000,
  });
  return res.items;
}

export async function listTemplates(opts: ConnectionOpts = {}): Promise<TemplateInfo[]> {
  const conn = resolveConnection(opts);
  const q = opts.namespace ? `?namespace=${encodeURIComponent(opts.namespace)}` : '';
  return (await callJson<{ items: TemplateInfo[] }>(conn, `/v1/templates${q}`, 'list templates')).items;
}
