// One behaviour suite, run against each way the agent is served: in process over HTTP/1.1, as a
// child over HTTP/2 on fd 0, and under asb-spawn (the *.test.ts files beside support/).
import { describe, before, after } from 'node:test';
import type { TestAgent } from './harness.ts';
import { processCases } from './processes.cases.ts';
import { fileCases } from './files.cases.ts';
import { errorCases } from './errors.cases.ts';

export function runtimeSuite(name: string, start: () => Promise<TestAgent>, opts: { skip?: string } = {}): void {
  describe(name, { skip: opts.skip }, () => {
    let agent: TestAgent | undefined;
    before(async () => {
      agent = await start();
    });
    after(async () => {
      await agent?.stop();
    });
    const get = () => agent!;
    describe('commands and processes', () => processCases(get));
    describe('files', () => fileCases(get));
    // Last: the final case checks the agent still serves after every refusal before it.
    describe('refusals', () => errorCases(get));
  });
}
