// sandboxd's command line: upstream's flags, defaults and checks (cmd/sandboxd/main.go), parsed
// as Go's flag package does (-name or --name, with =value or the next word; booleans alone), plus
// one of ours, --legacy-listen, for the runtime images (see main.ts).
export interface SandboxdArgs {
  listenHost: string;
  grpcPort: number;
  restPort: number;
  rootDir: string;
  metadataEnvPrefix: string;
  shutdownTimeoutMs: number;
  httpIdleTimeoutMs: number;
  streamChunkSize: number;
  version: boolean;
  /** HOST:PORT to serve the older runtime API (the agent's) on too, from this process. */
  legacyListen?: { host: string; port: number };
}

export class UsageError extends Error {}

export const USAGE = `Usage of sandboxd:
  --listen-host string          interface for both listeners (default "0.0.0.0")
  --grpc-port int               port for the gRPC ProcessService (default 9090)
  --rest-port int               port for the Filesystem & Runtime REST API (default 8080)
  --root-dir string             root that file operations and working directories are confined to; created if missing (default "/workspace")
  --metadata-env-prefix string  only environment variables with this prefix are on GET /v1/metadata (default "SANDBOX_")
  --shutdown-timeout duration   budget for in-flight requests and child processes at shutdown (default 10s)
  --http-idle-timeout duration  close idle HTTP keep-alive connections after this (default 1m0s)
  --stream-chunk-size int       most bytes of stdout/stderr per Start event; 0 is the default, 4096
  --version                     print the version and exit
  --legacy-listen HOST:PORT     also serve the older runtime API (:8888, /execute, /upload, ...) from this process
  (--zap-* logging flags are accepted and ignored)`;

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration, in milliseconds. */
export function parseDuration(s: string): number {
  if (s === '0' || s === '+0' || s === '-0') return 0;
  const m = /^([-+]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(s);
  if (!m) throw new UsageError(`invalid duration "${s}"`);
  let ms = 0;
  for (const part of m[2]!.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g))
    ms += Number(part[1]) * UNITS[part[2]!]!;
  return m[1] === '-' ? -ms : ms;
}

function parseInt10(name: string, v: string): number {
  if (!/^[-+]?\d+$/.test(v)) throw new UsageError(`invalid value "${v}" for flag -${name}: parse error`);
  return Number(v);
}

function parseBool(name: string, v: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new UsageError(`invalid boolean value "${v}" for -${name}: parse error`);
}

const ZAP_BOOL = new Set(['zap-devel']);
const ZAP_VALUE = new Set(['zap-encoder', 'zap-log-level', 'zap-stacktrace-level', 'zap-time-encoding']);

export function parseSandboxdArgs(words: string[]): SandboxdArgs {
  const a: SandboxdArgs = {
    listenHost: '0.0.0.0',
    grpcPort: 9090,
    restPort: 8080,
    rootDir: '/workspace',
    metadataEnvPrefix: 'SANDBOX_',
    shutdownTimeoutMs: 10_000,
    httpIdleTimeoutMs: 60_000,
    streamChunkSize: 0,
    version: false,
  };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--' || !word.startsWith('-') || word === '-') break; // Go stops at the first non-flag
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(word);
    if (!m) throw new UsageError(`bad flag syntax: ${word}`);
    const name = m[1]!;
    let value = m[2];
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= words.length) throw new UsageError(`flag needs an argument: -${name}`);
      return (value = words[++i]!);
    };
    switch (name) {
      case 'version':
        a.version = value === undefined ? true : parseBool(name, value);
        break;
      case 'listen-host':
        a.listenHost = next();
        break;
      case 'grpc-port':
        a.grpcPort = parseInt10(name, next());
        break;
      case 'rest-port':
        a.restPort = parseInt10(name, next());
        break;
      case 'root-dir':
        a.rootDir = next();
        break;
      case 'metadata-env-prefix':
        a.metadataEnvPrefix = next();
        break;
      case 'shutdown-timeout':
        a.shutdownTimeoutMs = parseDuration(next());
        break;
      case 'http-idle-timeout':
        a.httpIdleTimeoutMs = parseDuration(next());
        break;
      case 'stream-chunk-size':
        a.streamChunkSize = parseInt10(name, next());
        break;
      case 'legacy-listen': {
        const v = next();
        const hp = /^(.*):(\d+)$/.exec(v);
        if (!hp || Number(hp[2]) > 65535) throw new UsageError(`--legacy-listen must be HOST:PORT, got "${v}"`);
        a.legacyListen = { host: hp[1]!.replace(/^\[(.*)\]$/, '$1') || '0.0.0.0', port: Number(hp[2]) };
        break;
      }
      default:
        if (ZAP_BOOL.has(name)) break;
        if (ZAP_VALUE.has(name)) {
          next();
          break;
        }
        if (name === 'help' || name === 'h') throw new UsageError('');
        throw new UsageError(`flag provided but not defined: -${name}`);
    }
  }
  for (const [name, port] of [
    ['grpc-port', a.grpcPort],
    ['rest-port', a.restPort],
  ] as const)
    if (port < 1 || port > 65535) throw new UsageError(`--${name} must be in range 1-65535 (got ${port})`);
  if (a.grpcPort === a.restPort) throw new UsageError(`--grpc-port and --rest-port must differ (both ${a.grpcPort})`);
  return a;
}
