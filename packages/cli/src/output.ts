// One printer for every command: kubectl-style tables, or -o json|yaml for machines.
import { stringify } from 'yaml';

export type OutputFormat = 'table' | 'json' | 'yaml' | 'name';

export function parseFormat(v: string | undefined): OutputFormat {
  if (v === undefined || v === 'table' || v === 'wide') return 'table';
  if (v === 'json' || v === 'yaml' || v === 'name') return v;
  throw new UsageError(`-o ${v}: unknown output format; use json, yaml, name or table`);
}

export class UsageError extends Error {
  constructor(m: string) {
    super(m);
    this.name = 'UsageError';
  }
}

/** Pure: rows → aligned text, headers upper-cased as kubectl prints them. */
export function formatTable(headers: string[], rows: string[][]): string {
  const all = [headers.map((h) => h.toUpperCase()), ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]! + 3)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

export function age(fromIso: string | undefined, now = Date.now()): string {
  if (!fromIso) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(fromIso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function print(format: OutputFormat, data: unknown, table: () => string, name: () => string = () => ''): void {
  if (format === 'json') process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  else if (format === 'yaml') process.stdout.write(stringify(data));
  else if (format === 'name') process.stdout.write(name() + '\n');
  else process.stdout.write(table() + '\n');
}
