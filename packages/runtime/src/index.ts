// What other packages import from the runtime: the wire contract, never a running server.
export { ExecuteRequest, ExecRequest, SignalRequest, type ExecEvent, type ExecuteResponse, type ProcessInfo, type FileEntry, type FileStat } from './schemas.ts';
export { STATUS_OF, type Reason as AgentReason } from './errors.ts';
export { agentApp } from './app.ts';
export { Confiner } from './confine.ts';
export { FileService } from './files.ts';
export { ProcessManager, baseEnv } from './processes.ts';
