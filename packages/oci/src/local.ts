// The image store of a local engine's home, configured as this machine says: mirrors and
// plain-HTTP registries from $ASB_HOME/registries.conf (or ASB_REGISTRIES_CONF), credentials from
// Docker's config.json (DOCKER_CONFIG, else ~/.docker), extra CAs from a certs.d directory as
// Docker and podman keep them (<host>/ca.crt).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ImageStore } from './image-store.ts';
import { insecureHosts, loadDockerCredentials, loadRegistriesConf } from './registries.ts';
import { RegistryClient } from './registry-client.ts';

export function localImageStore(home: string, env: NodeJS.ProcessEnv = process.env): ImageStore {
  const registries = loadRegistriesConf(env.ASB_REGISTRIES_CONF ?? join(home, 'registries.conf'));
  const credentials = loadDockerCredentials(join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json'));
  const insecure = insecureHosts(registries);
  const certDirs = [join(home, 'certs.d'), '/etc/containers/certs.d', '/etc/docker/certs.d'];
  const client = new RegistryClient({
    credentials: (registry) => credentials[registry],
    insecure: (host) => insecure.has(host),
    ca: (registry) => caFor(certDirs, registry),
  });
  return new ImageStore(join(home, 'images'), client, registries);
}

/** Every *.crt of the first certs.d directory that has one for the registry, joined. */
function caFor(dirs: string[], registry: string): string | undefined {
  for (const base of dirs) {
    const dir = join(base, registry);
    if (!existsSync(dir)) continue;
    const pems = readdirSync(dir)
      .filter((f) => f.endsWith('.crt'))
      .map((f) => readFileSync(join(dir, f), 'utf8'));
    if (pems.length) return pems.join('\n');
  }
  return undefined;
}
