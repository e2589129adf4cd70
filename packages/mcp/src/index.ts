export {
  serveStdio,
  serveHttp,
  httpLimitsFromEnv,
  createMcpServer,
  SERVER_NAME,
  SERVER_VERSION,
  type McpOptions,
  type HttpServerHandle,
  type HttpLimits,
} from './server.ts';
export { SandboxSession, type SessionOptions } from './session.ts';
export { registerTools, capOutput, DEFAULT_LIMITS, type ToolLimits } from './tools.ts';
