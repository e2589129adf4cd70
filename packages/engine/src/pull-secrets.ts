// A pod's imagePullSecrets on one machine, where there is no Secret store: each name is a file in
// $ASB_HOME/secrets/<namespace>/, NAME.json or NAME.yaml, holding either a Docker config
// ({"auths": ...}) or the Secret itself as `kubectl create secret docker-registry NAME
// --dry-run=client -o yaml` prints it (type kubernetes.io/dockerconfigjson). As the kubelet does,
// a secret that is missing or unreadable is skipped with a warning and the pull goes on without it.
import { join } from 'node:path';
import YAML from 'yaml';
import { dockerConfigCredentials, type Credentials, type DockerConfig } from '@asb/oci';
import { SECRET_NAME, findSecret, secretKey, secretsDir } from './secrets.ts';

export interface PullSecrets {
  credentials: Record<string, Credentials>;
  /** What could not be used, and why (for the log and a failed pull's message). */
  problems: string[];
}

export function pullSecrets(home: string, namespace: string, names: Array<{ name?: string }> = []): PullSecrets {
  const credentials: Record<string, Credentials> = {};
  const problems: string[] = [];
  const dir = secretsDir(home, namespace);
  for (const { name } of names) {
    if (!name || !SECRET_NAME.test(name)) {
      problems.push(`imagePullSecrets "${name ?? ''}": not a Secret name`);
      continue;
    }
    const found = findSecret(home, namespace, name);
    if (!found) {
      problems.push(`imagePullSecrets "${name}": no ${join(dir, name)}.json or .yaml`);
      continue;
    }
    try {
      // Earlier secrets win for a registry, as the kubelet tries them in order.
      for (const [registry, c] of Object.entries(dockerConfigCredentials(dockerConfigOf(found.text)))) {
        credentials[registry] ??= c;
      }
    } catch (err) {
      problems.push(`imagePullSecrets "${name}": ${found.path}: ${(err as Error).message}`);
    }
  }
  return { credentials, problems };
}

function dockerConfigOf(text: string): DockerConfig {
  const doc = YAML.parse(text) as
    (DockerConfig & { kind?: string; data?: Record<string, string>; stringData?: Record<string, string> }) | null;
  if (!doc || typeof doc !== 'object') throw new Error('neither a Docker config nor a Secret');
  if (doc.kind !== 'Secret') return doc;
  const raw = secretKey(doc, '.dockerconfigjson');
  if (!raw) throw new Error('the Secret has no .dockerconfigjson (make it with kubectl create secret docker-registry)');
  return JSON.parse(raw) as DockerConfig;
}
