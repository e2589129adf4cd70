// Percentiles and a plain table, shared by the benchmarks.
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

export function table(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const w = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(w[i]!)).join(' | ') + ' |';
  return [line(headers), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...rows.map(line)].join('\n');
}

/** Rows measured per column (a gVisor version each), printed side by side: p50 (p95, n). */
export class SideBySide {
  private readonly rows: { measure: string; goal: string; cells: Map<string, string> }[] = [];
  private readonly columns: string[] = [];

  add(column: string, measure: string, goal: string, values: number[], unit: (n: number) => string): void {
    if (!this.columns.includes(column)) this.columns.push(column);
    let row = this.rows.find((r) => r.measure === measure);
    if (!row) this.rows.push((row = { measure, goal, cells: new Map() }));
    const cell = `${unit(percentile(values, 50))} (p95 ${unit(percentile(values, 95))}, n ${values.length})`;
    row.cells.set(column, cell);
  }

  toString(): string {
    return table(
      ['measure', 'goal', ...this.columns],
      this.rows.map((r) => [r.measure, r.goal, ...this.columns.map((c) => r.cells.get(c) ?? '')]),
    );
  }
}

/** Prints a benchmark's heading (its title and the time), one line per note, then its table. */
export function printReport(title: string, notes: string[], results: SideBySide): void {
  console.log(`\n${title} — ${new Date().toISOString()}; p50 (p95, n)`);
  for (const n of notes) console.log(`  ${n}`);
  console.log();
  console.log(results.toString());
}
