export { Engine, ENGINE_VERSION, ensureToken, tokenFile, stateFile, type EngineState } from './engine.ts';
export { loadConfig, defaultHome, type EngineConfig } from './config.ts';
export { EngineError, STATUS_OF, statusBody, type Reason } from './errors.ts';
export { resolveImage, UnknownImageError, BUILTIN_IMAGE_MAP, type LocalImage } from './images.ts';
export { buildOciSpec } from './oci-spec.ts';
export { agentArgv, type SandboxRuntimeSpec, type ResourceLimits } from './drivers/runtime-spec.ts';
export { HOST_READ_ONLY_PATHS } from './rootfs.ts';
export { unmountAll } from './workspace.ts';
export {
  ENGINE_CGROUP,
  ENGINE_CPU_SHARES_DEFAULT,
  TEARDOWN_CGROUP,
  TEARDOWN_CPU_SHARES,
  cpuCgroupOf,
  sharesToWeight,
} from './engine-cgroup.ts';
export { applyObjects, parseApplyBody } from './apply.ts';
export { ANNOTATION_ALLOWED_DOMAINS, ANNOTATION_CREDENTIALS } from './network/policy.ts';
export { SqliteStore } from './store/sqlite-store.ts';
export { LocalWorkloads } from './workloads.ts';
export { buildImage, BuildError, type BuildOptions } from './image-build/build.ts';
export { DockerfileError } from './image-build/dockerfile.ts';
export { importRootfs } from './image-build/import.ts';
