// The ProcessService definition for @grpc/grpc-js, parsed from upstream's process.proto at start
// (protobufjs) rather than generated: the .proto stays the one source of the wire contract.
import protobuf from 'protobufjs';
import { fromJSON } from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { PROCESS_PROTO } from './proto-text.ts';

/** The messages as proto-loader hands them over (keepCase, oneofs, defaults). */
export interface ProcessConfig {
  command: string[];
  env_vars: Record<string, string>;
  cwd?: string;
}
export interface StartRequest {
  config: ProcessConfig | null;
  pty: { cols: number; rows: number } | null;
}
export interface ExecuteRequest {
  config: ProcessConfig | null;
}
export interface WriteStdinRequest {
  process_id: number;
  input?: Buffer;
  eof?: object | null;
  payload?: 'input' | 'eof';
}
export interface SendSignalRequest {
  process_id: number;
  signal: string;
}
export interface ResizeTTYRequest {
  process_id: number;
  cols: number;
  rows: number;
}
export type StartResponse =
  { init: { process_id: number } } | { stdout: Buffer } | { stderr: Buffer } | { exit: { exit_code: number } };
export interface ExecuteResponse {
  exit_code: number;
  stdout: Buffer;
  stderr: Buffer;
}

export function processServiceDefinition(): ServiceDefinition {
  const root = new protobuf.Root();
  // The one import of process.proto; protobufjs ships the well-known types.
  root.addJSON(protobuf.common.get('google/protobuf/empty.proto')!.nested!);
  protobuf.parse(PROCESS_PROTO, root, { keepCase: true });
  const pkg = fromJSON(root.toJSON(), { keepCase: true, enums: String, defaults: true, oneofs: true });
  return pkg['process.v1.ProcessService'] as ServiceDefinition;
}
