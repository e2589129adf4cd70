// What other packages import from the runtime: the wire contract (schemas, types, error reasons)
// and the pieces to embed an agent in a test. Importing this never starts a server: only main.ts
// does.
export { ExecuteRequest, ExecRequest, SignalRequest, MainArgv, LIMITS, SIGNALS } from './schemas.ts';
export {
  ExecEvent,
  ProcessInfo,
  ProcessList,
  StartProcessResponse,
  HealthResponse,
  ExistsResponse,
  WriteFileResponse,
  FileEntry,
  FileList,
  FileStat,
  parseReply,
  MalformedReplyError,
  ExecuteResponse,
  type UploadResponse,
} from './replies.ts';
export { STATUS_OF, type Reason as AgentReason, type ErrorBody as AgentErrorBody } from './errors.ts';
export { agentApp } from './app.ts';
export { Confiner } from './confine.ts';
export { FileService } from './files.ts';
export { ProcessManager, baseEnv } from './processes.ts';
export { configFromEnv, createAgent, requestHandler, serveHttp1, type AgentConfig, type Agent } from './server.ts';
