// What every command gets: global flags turned into SDK connection options and an output format.
import type { ConnectionOpts } from '@asb/sdk';
import { parseFormat, type OutputFormat } from './output.ts';

export interface GlobalFlags {
  namespace?: string;
  output?: string;
  url?: string;
  token?: string;
}

export interface Ctx {
  conn: ConnectionOpts;
  format: OutputFormat;
  quiet: boolean;
}

export function ctxOf(flags: GlobalFlags): Ctx {
  const format = parseFormat(flags.output);
  return {
    conn: { namespace: flags.namespace, url: flags.url, token: flags.token },
    format,
    quiet: format !== 'table',
  };
}
