export { Sandbox, type SandboxInfo, type SandboxCreateOpts, type SandboxControl } from './sandbox.ts';
export { kubernetes, type KubernetesConnection, type RouterAddress } from './kubernetes.ts';
export { Commands, type RunOpts, type CommandResult, type ProcessInfo } from './commands.ts';
export { Files, type FileEntry, type FileStat } from './files.ts';
export { resolveConnection, type ConnectionOpts, type ResolvedConnection } from './connection.ts';
export { SandboxError, NotFoundError, InvalidError, TimeoutError, UnavailableError, AuthError, PayloadTooLargeError, InsufficientStorageError, errorFromResponse } from './errors.ts';
export { apply, listTemplates, type ApplyResult, type TemplateInfo } from './manifests.ts';
export { Objects, resolveKind, type ApiObject, type ObjectEvent, type ObjectsOpts } from './objects.ts';
export { Snapshot, Snapshots, type SnapshotInfo, type SuspendResult, type ResumeResult } from './snapshots.ts';
