// Upstream's Python client from PyPI, in one virtualenv per version (cached next to the
// Kubernetes binaries): v0.4.6, the seeds' version, and 1.0.8, the newest on 2026-11-29.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from './cluster.ts';

export const PYTHON_CLIENT_VERSIONS = ['0.4.6', '1.0.8'];

/** The python of a virtualenv holding k8s-agent-sandbox==version (made on first use). */
export function pythonClient(version: string, log: (m: string) => void = () => {}): string {
  const venv = join(BIN, '..', `py-k8s-agent-sandbox-${version}`);
  const python = join(venv, 'bin', 'python');
  if (existsSync(join(venv, '.installed'))) return python;
  log(`installing k8s-agent-sandbox==${version} from PyPI into ${venv}`);
  execFileSync('python3', ['-m', 'venv', '--clear', venv], { stdio: 'inherit' });
  execFileSync(
    python,
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `k8s-agent-sandbox==${version}`],
    { stdio: 'inherit' },
  );
  execFileSync('touch', [join(venv, '.installed')]);
  return python;
}
