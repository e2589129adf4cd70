// Kubernetes resource quantities ("512Mi", "250m", "1.5", "2e3"): parsed once, here.
const SUFFIX: Record<string, number> = {
  '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6,
};
const QUANTITY_RE = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;

export class QuantityError extends Error {}

export function isQuantity(q: unknown): boolean {
  return typeof q === 'number' ? Number.isFinite(q) : typeof q === 'string' && QUANTITY_RE.test(q.trim());
}

/** The quantity's value in base units (bytes for memory, cores for cpu). */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = QUANTITY_RE.exec(q.trim());
  if (!m) throw new QuantityError(`"${q}" is not a Kubernetes quantity (examples: 512Mi, 1Gi, 250m, 2)`);
  const base = Number(m[1]);
  if (m[2]) return base * 10 ** Number(m[2].slice(1));
  return base * SUFFIX[m[3] ?? '']!;
}

export const bytes = (q: string | number): number => Math.ceil(parseQuantity(q));
export const cpuMillis = (q: string | number): number => Math.ceil(parseQuantity(q) * 1000);
