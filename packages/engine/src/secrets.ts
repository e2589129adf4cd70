// Secrets on one machine, where there is no Secret store: one file per name in
// $ASB_HOME/secrets/<namespace>/, NAME.json or NAME.yaml (or .yml), holding a Secret as kubectl
// prints it (`--dry-run=client -o yaml`) or what the reader takes in its place. Image pull secrets
// (pull-secrets.ts) and the egress proxy's credentials (network/credentials.ts) read them here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function secretsDir(home: string, namespace: string): string {
  return join(home, 'secrets', namespace);
}

/** The file of secret `name` and its text, the first of .json, .yaml, .yml there; undefined when none. */
export function findSecret(home: string, namespace: string, name: string): { path: string; text: string } | undefined {
  for (const ext of ['json', 'yaml', 'yml']) {
    const path = join(secretsDir(home, namespace), `${name}.${ext}`);
    try {
      return { path, text: readFileSync(path, 'utf8') };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return undefined;
}

/** A key of a Secret: from stringData as it is, else from data, base64-decoded. */
export function secretKey(
  doc: { stringData?: Record<string, unknown>; data?: Record<string, unknown> },
  key: string,
): string | undefined {
  const plain = doc.stringData?.[key];
  if (typeof plain === 'string' || typeof plain === 'number' || typeof plain === 'boolean') return String(plain);
  const encoded = doc.data?.[key];
  return typeof encoded === 'string' ? Buffer.from(encoded, 'base64').toString('utf8') : undefined;
}
