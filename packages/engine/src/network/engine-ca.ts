// The engine's own certificate authority, for the one thing that needs it: the egress proxy
// speaks TLS as a destination that gets a credential (the sandbox's requests must be read to add
// the header). Made by openssl on first use, kept in $ASB_HOME/net (the key never leaves the
// host, mode 0600); a leaf certificate per destination, made when first needed, kept in memory.
// Sandboxes with credentials trust it through the bundle `bundleFile` (the host's public roots
// and this CA), named by the usual environment variables (caEnv).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { runCommand as run } from '../spawner.ts';

const HOST_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export class EngineCa {
  private readonly leaves = new Map<string, Promise<tls.SecureContext>>();

  private constructor(
    private readonly dir: string,
    readonly certPem: string,
  ) {}

  static async load(dir: string): Promise<EngineCa> {
    const key = join(dir, 'ca.key');
    const cert = join(dir, 'ca.pem');
    if (!existsSync(key) || !existsSync(cert)) {
      await run('openssl', [
        'req', '-x509', '-new', ...EC, '-keyout', key, '-out', cert, '-days', '3650',
        '-subj', '/CN=asb engine egress CA',
        '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      ]); // prettier-ignore
    }
    return new EngineCa(dir, readFileSync(cert, 'utf8'));
  }

  /** A TLS server context presenting `host`, signed by this CA. */
  contextFor(host: string): Promise<tls.SecureContext> {
    let ctx = this.leaves.get(host);
    if (!ctx) {
      ctx = this.makeLeaf(host);
      this.leaves.set(host, ctx);
      ctx.catch(() => this.leaves.delete(host));
    }
    return ctx;
  }

  private async makeLeaf(host: string): Promise<tls.SecureContext> {
    const base = join(this.dir, `leaf-${host}`);
    await run('openssl', [
      'req', '-x509', '-new', ...EC, '-keyout', `${base}.key`, '-out', `${base}.pem`, '-days', '30',
      '-subj', `/CN=${host}`,
      '-addext', `subjectAltName=DNS:${host}`,
      '-addext', 'extendedKeyUsage=serverAuth',
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-CA', join(this.dir, 'ca.pem'), '-CAkey', join(this.dir, 'ca.key'),
    ]); // prettier-ignore
    return tls.createSecureContext({
      cert: readFileSync(`${base}.pem`),
      key: readFileSync(`${base}.key`),
    });
  }

  /** The host's public roots and this CA, in one file a sandbox can be pointed at. */
  writeBundle(file: string): void {
    const host = HOST_BUNDLES.find((f) => existsSync(f));
    writeFileSync(file, `${host ? readFileSync(host, 'utf8') : ''}\n${this.certPem}`, { mode: 0o644 });
  }
}

/** The variables that point the usual clients (OpenSSL, Python, requests, pip, curl, git, node)
 *  at a CA bundle. */
export function caEnv(bundle: string): Record<string, string> {
  return {
    SSL_CERT_FILE: bundle,
    REQUESTS_CA_BUNDLE: bundle,
    PIP_CERT: bundle,
    CURL_CA_BUNDLE: bundle,
    GIT_SSL_CAINFO: bundle,
    NODE_EXTRA_CA_CERTS: bundle,
  };
}
