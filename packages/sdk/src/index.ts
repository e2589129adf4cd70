export {
  Sandbox,
  type SandboxInfo,
  type SandboxCreateOpts,
  type SandboxConnectOpts,
  type SandboxControl,
} from './sandbox.ts';
export type { Connector, ConnectorConfig, ExposedPort, SandboxHandle } from './connector.ts';
export { registerConnector } from './connectors.ts';
export { kubernetes, type KubernetesConnection, type RouterAddress } from './kubernetes-connection.ts';
export { Commands, type RunOpts, type OutputOpts, type CommandResult, type ProcessInfo } from './commands.ts';
export { OutputKeeper, DEFAULT_MAX_OUTPUT_CHARS, type OutputSink } from './output.ts';
export { Files, type FileEntry, type FileStat } from './files.ts';
export { resolveConnection, type ConnectionOpts, type ResolvedConnection } from './connection.ts';
export {
  SandboxError,
  NotFoundError,
  InvalidError,
  ConflictError,
  InternalError,
  TimeoutError,
  UnavailableError,
  AuthError,
  PayloadTooLargeError,
  InsufficientStorageError,
  errorFromResponse,
} from './errors.ts';
export { apply, listTemplates, type ApplyResult, type TemplateInfo } from './manifests.ts';
export { Objects, resolveKind, type ApiObject, type ObjectEvent, type ObjectsOpts } from './objects.ts';
export { Snapshot, Snapshots, type SnapshotInfo, type SuspendResult, type ResumeResult } from './snapshots.ts';
export { DEFAULT_TEMPLATE } from '@asb/api';
