// The agent in this process, over HTTP/1.1 on an ephemeral loopback port (the Kubernetes mode).
import { runtimeSuite } from './support/suite.ts';
import { hasProc, startInProcess } from './support/harness.ts';

runtimeSuite('the agent in process over HTTP/1.1', startInProcess, {
  skip: hasProc ? undefined : 'needs /proc to check that process trees are gone',
});
