// JSON from a request body: parsed, and refused when nested deeper than any object the API takes.
// Validation, merge patch and the store's serialisation all recurse; a 4 MiB body of `[[[[…`
// parses fine but would exhaust the stack in any of them (a 500 instead of a 400).
import { EngineError } from '../errors.ts';

export const MAX_JSON_DEPTH = 64;

/** Whether a parsed value nests deeper than `max` (iterative: deep input cannot overflow it). */
export function jsonDepthExceeds(value: unknown, max = MAX_JSON_DEPTH): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

export function parseJsonBody(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EngineError('BadRequest', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (jsonDepthExceeds(value))
    throw new EngineError('BadRequest', `request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  return value;
}
