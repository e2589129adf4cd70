// Kubernetes resource quantities ("512Mi", "250m", "1.5", "1e3", "100M"), parsed once, here.
// Grammar (k8s.io/apimachinery/pkg/api/resource): a signed decimal number, then a binary suffix
// (Ki..Ei), a decimal suffix (n u m "" k M G T P E) or an exponent (e3, E-2). No spaces, and "1K"
// is not a quantity (kilo is a lowercase k).
//
// Integer conversions use exact decimal arithmetic (BigInt): in floats, 0.1 × 1000 is
// 100.00000000000001, and Kubernetes' round-up rule would then turn "0.1" cpu into 101 millicores.
import { z } from 'zod';
import { isQualifiedName } from './meta.ts';

const QUANTITY_RE = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([+-]?\d+)|(n|u|m|k|M|G|T|P|E))?$/;
const BINARY_POW2: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL_POW10: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
// Far beyond any real resource amount; it keeps a hostile "1e999999999" from allocating a huge BigInt.
const MAX_EXPONENT = 100;

export class QuantityError extends Error {
  override readonly name = 'QuantityError';
}

/** value = sign × digits × 10^pow10 × 2^pow2, exactly. */
interface Decimal {
  negative: boolean;
  digits: bigint;
  pow10: number;
  pow2: number;
}

function decompose(q: string | number): Decimal | undefined {
  const text = typeof q === 'number' ? (Number.isFinite(q) ? String(q) : '') : q;
  const m = QUANTITY_RE.exec(text);
  if (!m) return undefined;
  const [, sign, number = '', binary, exponent, decimal] = m;
  const [whole = '', fraction = ''] = number.split('.');
  const pow10 = -fraction.length + (exponent !== undefined ? Number(exponent) : decimal ? DECIMAL_POW10[decimal]! : 0);
  if (Math.abs(pow10) > MAX_EXPONENT) return undefined;
  return {
    negative: sign === '-',
    digits: BigInt(whole + fraction || '0'),
    pow10,
    pow2: binary ? BINARY_POW2[binary]! : 0,
  };
}

export function isQuantity(q: unknown): q is string | number {
  return (typeof q === 'string' || typeof q === 'number') && decompose(q) !== undefined;
}

function decomposeOrThrow(q: string | number): Decimal {
  const d = decompose(q);
  if (!d)
    throw new QuantityError(`${JSON.stringify(q)} is not a Kubernetes quantity (examples: 512Mi, 1Gi, 250m, 2, 1e3)`);
  return d;
}

/** The quantity's value in base units (bytes for memory, cores for cpu), as a float. */
export function parseQuantity(q: string | number): number {
  const d = decomposeOrThrow(q);
  // Number("<digits>e<pow10>") rounds once, correctly; scaling by a power of two is exact.
  return (d.negative ? -1 : 1) * Number(`${d.digits}e${d.pow10}`) * 2 ** d.pow2;
}

/** ⌈value × 10^scale⌉, exactly: Kubernetes rounds up (Value, MilliValue). */
function ceilScaled(q: string | number, scale: number): number {
  const d = decomposeOrThrow(q);
  const n = d.digits << BigInt(d.pow2);
  const s = d.pow10 + scale;
  if (s >= 0) return Number((d.negative ? -n : n) * 10n ** BigInt(s));
  const div = 10n ** BigInt(-s);
  // ceil(x) for x ≥ 0 is (n + div − 1) / div; ceil(−x) = −floor(x).
  return d.negative ? -Number(n / div) : Number((n + div - 1n) / div);
}

/** Bytes, rounded up: bytes("1Gi") = 1073741824, bytes("1.5k") = 1500. */
export const bytes = (q: string | number): number => ceilScaled(q, 0);
/** Millicores, rounded up: cpuMillis("250m") = 250, cpuMillis("2") = 2000, cpuMillis("0.1") = 100. */
export const cpuMillis = (q: string | number): number => ceilScaled(q, 3);

/** A quantity as YAML gives it: a string ("512Mi") or a plain number (2). */
export const Quantity = z.union([z.string(), z.number()]).refine(isQuantity, {
  message: 'must be a Kubernetes quantity such as 512Mi, 1Gi, 250m, 2 or 1e3',
});
/** requests/limits: resource name → non-negative quantity. */
export const ResourceList = z.record(
  z.string().refine(isQualifiedName, {
    message: 'must be a resource name such as cpu, memory, ephemeral-storage or nvidia.com/gpu',
  }),
  Quantity.refine((q) => !isQuantity(q) || parseQuantity(q) >= 0, { message: 'must not be negative' }),
);
export type ResourceList = z.infer<typeof ResourceList>;
