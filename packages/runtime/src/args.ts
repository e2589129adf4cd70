// The agent's command line:
//   --fd N             serve HTTP/2 (prior knowledge) over the socket on fd N (the local engine)
//   --listen HOST:PORT serve HTTP/1.1 (Kubernetes; the default, on 0.0.0.0:8888)
//   --main JSON        the sandbox's main process (a template container's command and args)
// Started from a V8 startup snapshot (dist/agent.blob, see scripts/build.mjs) the same words come
// without dashes (`node --snapshot-blob agent.blob fd 0`), since node would take them as its own.
import { MainArgv } from './schemas.ts';

export type AgentArgs =
  { mode: 'fd'; fd: number; main?: string[] } | { mode: 'listen'; host: string; port: number; main?: string[] };

export class UsageError extends Error {}

const NAMES = ['fd', 'listen', 'main'];
export const isArgName = (word: string) => NAMES.includes(word.replace(/^--/, ''));

/** Parses the words after the script (or after the snapshot blob). */
export function parseArgs(words: string[]): AgentArgs {
  const opts = new Map<string, string>();
  for (let i = 0; i < words.length; i += 2) {
    const name = words[i]!.replace(/^--/, '');
    const value = words[i + 1];
    if (!NAMES.includes(name))
      throw new UsageError(`unknown argument "${words[i]}" (expected --fd N, --listen HOST:PORT, --main JSON)`);
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    opts.set(name, value);
  }
  let main: string[] | undefined;
  const mainJson = opts.get('main');
  if (mainJson !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(mainJson);
    } catch {
      throw new UsageError(`--main must be a JSON array of strings, got ${mainJson.slice(0, 80)}`);
    }
    const r = MainArgv.safeParse(parsed);
    if (!r.success) throw new UsageError(`--main must be a JSON array of strings: ${r.error.issues[0]?.message}`);
    main = r.data;
  }
  const fd = opts.get('fd');
  if (fd !== undefined) {
    if (opts.has('listen')) throw new UsageError('give --fd or --listen, not both');
    if (!/^\d+$/.test(fd)) throw new UsageError(`--fd must be a file descriptor number, got "${fd}"`);
    return { mode: 'fd', fd: Number(fd), main };
  }
  const listen = opts.get('listen') ?? '0.0.0.0:8888';
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen must be HOST:PORT, got "${listen}"`);
  return { mode: 'listen', host: m[1]!.replace(/^\[(.*)\]$/, '$1') || '0.0.0.0', port: Number(m[2]), main };
}
