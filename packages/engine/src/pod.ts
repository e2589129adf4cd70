// What the local engine reads from a pod template: the first container's image, command, env,
// working directory and resource limits. Everything else of the PodSpec is kept but unused here.
import type { EngineConfig } from './config.ts';
import type { ResourceLimits } from './oci-spec.ts';

export interface ContainerLike {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: Array<{ name: string; value?: string }>;
  resources?: { limits?: Record<string, string | number>; requests?: Record<string, string | number> };
}

export interface PodTemplateLike {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: ContainerLike[]; runtimeClassName?: string };
}

/** limits win; absent limits fall back to the engine's defaults (requests are not limits). */
export function limitsOf(c: ContainerLike, config: Pick<EngineConfig, 'defaultMemoryBytes' | 'defaultCpuMillis' | 'defaultPidsLimit'>): ResourceLimits {
  const lim = c.resources?.limits ?? {};
  return {
    memoryBytes: lim.memory !== undefined ? bytes(String(lim.memory)) : config.defaultMemoryBytes,
    cpuMillis: lim.cpu !== undefined ? cpuMillis(String(lim.cpu)) : config.defaultCpuMillis,
    pidsLimit: config.defaultPidsLimit,
  };
}

// Kubernetes quantities, enough for limits: "512Mi", "1Gi", "1G", "2", "250m", "1.5".
const SUFFIX: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, m: 1e-3 };
function quantity(q: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$/.exec(q.trim());
  if (!m) throw new Error(`"${q}" is not a Kubernetes quantity (e.g. 512Mi, 1Gi, 250m, 2)`);
  return Number(m[1]) * SUFFIX[m[2] ?? '']!;
}
export const bytes = (q: string) => Math.round(quantity(q));
export const cpuMillis = (q: string) => Math.round(quantity(q) * 1000);
