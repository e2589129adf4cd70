// What the local engine reads from a pod template: the first container's image, command, env,
// working directory and resource limits. Everything else of the PodSpec is kept but unused here.
import type { EngineConfig } from './config.ts';
import type { ResourceLimits } from './drivers/runtime-spec.ts';
import { bytes, cpuMillis } from '@asb/api';

export interface ContainerLike {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  imagePullPolicy?: string;
  securityContext?: { runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean };
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  resources?: { limits?: Record<string, string | number>; requests?: Record<string, string | number> };
}

export interface PodTemplateLike {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: ContainerLike[]; runtimeClassName?: string; imagePullSecrets?: Array<{ name?: string }> };
}

/** limits win; absent limits fall back to the engine's defaults (requests are not limits). */
type LimitDefaults = Pick<EngineConfig, 'defaultMemoryBytes' | 'defaultCpuMillis' | 'defaultPidsLimit'>;

export function limitsOf(c: ContainerLike, config: LimitDefaults): ResourceLimits {
  const lim = c.resources?.limits ?? {};
  return {
    memoryBytes: lim.memory !== undefined ? bytes(String(lim.memory)) : config.defaultMemoryBytes,
    cpuMillis: lim.cpu !== undefined ? cpuMillis(String(lim.cpu)) : config.defaultCpuMillis,
    pidsLimit: config.defaultPidsLimit,
  };
}

/** The workspace's size: limits["ephemeral-storage"], else the engine's default. */
export function diskBytesOf(c: ContainerLike, config: Pick<EngineConfig, 'defaultDiskBytes'>): number {
  const q = c.resources?.limits?.['ephemeral-storage'];
  return q !== undefined ? bytes(String(q)) : config.defaultDiskBytes;
}
