export { Engine, ENGINE_VERSION, ensureToken, tokenFile, stateFile, type EngineState } from './engine.ts';
export { loadConfig, defaultHome, type EngineConfig } from './config.ts';
export { EngineError, STATUS_OF, statusBody, type Reason } from './errors.ts';
export { resolveImage, UnknownImageError, BUILTIN_IMAGE_MAP, type LocalImage } from './images.ts';
export { buildOciSpec, agentArgv, type SandboxRuntimeSpec, type ResourceLimits } from './oci-spec.ts';
export { HOST_READ_ONLY_PATHS } from './rootfs.ts';
export { unmountAll } from './workspace.ts';
