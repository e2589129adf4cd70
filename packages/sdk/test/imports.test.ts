// The SDK's modules import one another without a circle (Sandbox knows connectors by their
// interface; connectors are loaded by the registry), and the SDK does not import the controller.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const src = join(import.meta.dirname, '../src');
const files = readdirSync(src)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => resolve(src, f));
const importsOf = (f: string) =>
  [...readFileSync(f, 'utf8').matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]!);

describe('SDK imports', () => {
  it('have no circle (static imports, type imports too)', () => {
    const cycles: string[] = [];
    const state = new Map<string, 1 | 2>();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, 1);
      stack.push(f);
      for (const d of importsOf(f)
        .filter((p) => p.startsWith('.'))
        .map((p) => resolve(dirname(f), p))) {
        if (state.get(d) === 1)
          cycles.push(
            stack
              .slice(stack.indexOf(d))
              .concat(d)
              .map((x) => x.split('/').pop())
              .join(' -> '),
          );
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 2);
    };
    for (const f of files) if (!state.has(f)) visit(f);
    assert.deepEqual(cycles, []);
  });

  it('do not reach into the controller package, and Sandbox does not name a connector', () => {
    for (const f of files) assert.ok(!importsOf(f).some((p) => p.startsWith('@asb/k8s')), f);
    const sandbox = importsOf(resolve(src, 'sandbox.ts'));
    assert.ok(!sandbox.some((p) => /kube|engine-connector/.test(p)), sandbox.join(', '));
  });
});
