// The value of a credential's secret, read from the host when a request needs it (a rotated secret
// is used from the next request on). Secrets live where the pull secrets do: one file per name in
// $ASB_HOME/secrets/<namespace>/, NAME.json or NAME.yaml, either a Secret as `kubectl create secret
// generic NAME --from-literal=token=… --dry-run=client -o yaml` prints it (data base64,
// stringData plain) or a plain map of keys to values.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import type { CredentialSpec } from './policy.ts';

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function secretValue(home: string, namespace: string, c: CredentialSpec): string {
  if (!NAME.test(c.secret)) throw new Error(`credential for ${c.host}: "${c.secret}" is not a Secret name`);
  const dir = join(home, 'secrets', namespace);
  for (const ext of ['json', 'yaml', 'yml']) {
    let text: string;
    try {
      text = readFileSync(join(dir, `${c.secret}.${ext}`), 'utf8');
    } catch {
      continue;
    }
    const doc = YAML.parse(text) as Record<string, unknown> | null;
    const value = valueOf(doc, c.key);
    if (value === undefined) throw new Error(`credential for ${c.host}: secret ${c.secret} has no key "${c.key}"`);
    return value;
  }
  throw new Error(`credential for ${c.host}: no secret ${join(dir, c.secret)}.json or .yaml`);
}

function valueOf(doc: Record<string, unknown> | null, key: string): string | undefined {
  if (!doc) return undefined;
  const stringData = doc.stringData as Record<string, string> | undefined;
  const data = doc.data as Record<string, string> | undefined;
  if (doc.kind === 'Secret') {
    if (stringData?.[key] !== undefined) return String(stringData[key]);
    if (data?.[key] !== undefined) return Buffer.from(String(data[key]), 'base64').toString('utf8');
    return undefined;
  }
  const v = doc[key];
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

/** The header's value: the format with the secret in place of {value}. */
export function headerValue(c: CredentialSpec, secret: string): string {
  return c.format.replaceAll('{value}', secret);
}
