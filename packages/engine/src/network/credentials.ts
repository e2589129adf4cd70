// The value of a credential's secret, read from the host when a request needs it (a rotated secret
// is used from the next request on). Secrets live where the pull secrets do: one file per name in
// $ASB_HOME/secrets/<namespace>/, NAME.json or NAME.yaml, either a Secret as `kubectl create secret
// generic NAME --from-literal=token=… --dry-run=client -o yaml` prints it (data base64,
// stringData plain) or a plain map of keys to values.
import YAML from 'yaml';
import { SECRET_NAME, findSecret, secretKey, secretsDir } from '../secrets.ts';
import type { CredentialSpec } from './policy.ts';

export function secretValue(home: string, namespace: string, c: CredentialSpec): string {
  if (!SECRET_NAME.test(c.secret)) throw new Error(`credential for ${c.host}: "${c.secret}" is not a Secret name`);
  const found = findSecret(home, namespace, c.secret);
  if (!found)
    throw new Error(`credential for ${c.host}: no secret ${secretsDir(home, namespace)}/${c.secret}.json or .yaml`);
  const value = valueOf(YAML.parse(found.text) as Record<string, unknown> | null, c.key);
  if (value === undefined) throw new Error(`credential for ${c.host}: secret ${c.secret} has no key "${c.key}"`);
  return value;
}

function valueOf(doc: Record<string, unknown> | null, key: string): string | undefined {
  if (!doc) return undefined;
  if (doc.kind === 'Secret') return secretKey(doc, key);
  const v = doc[key];
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

/** The header's value: the format with the secret in place of {value}. */
export function headerValue(c: CredentialSpec, secret: string): string {
  return c.format.replaceAll('{value}', secret);
}
