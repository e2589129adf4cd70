// Builds (or finds cached) the Kubernetes components the k8s tests run: scripts/test.sh calls it
// before the suites, so a cold cache costs build time there, not a test's timeout.
import { ensureBinaries, gatewayApiCrdDir, BIN } from './cluster.ts';
import { PYTHON_CLIENT_VERSIONS, pythonClient } from './python.ts';
import { SUITES, ensureSuiteBinaries, labKwokStages } from './upstream-e2e.ts';

const t0 = Date.now();
ensureBinaries((m) => process.stderr.write(`==> ${m}\n`));
process.stderr.write(`==> Kubernetes components ready in ${BIN} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
for (const v of PYTHON_CLIENT_VERSIONS) pythonClient(v, (m) => process.stderr.write(`==> ${m}\n`));
// (The Gateway API's CRDs, for gateway.test.ts.)
process.stderr.write(`==> Gateway API CRDs in ${gatewayApiCrdDir()}\n`);
// Upstream's e2e suites, compiled (upstream-e2e.test.ts), and KWOK's stages the lab reads.
for (const suite of SUITES) ensureSuiteBinaries(suite, (m) => process.stderr.write(`==> ${m}\n`));
labKwokStages();
