// Seed 000's cmd/demo: ship Go sources into a sandbox, build and run them, on the local engine
// (the default) or on a Kubernetes cluster (--kubeconfig or --kubernetes: a SandboxClaim served
// by the agent-sandbox controller, the runtime reached through the sandbox router).
//
//   node --import tsx examples/go/demo.ts --flow=all                     # local engine
//   node --import tsx examples/go/demo.ts --kubernetes --namespace=default --template=go-runtime-template --flow=all
//   … --flow=smoke --keep                 # leave the sandbox alive; its claim name is printed
//   … --flow=multi --claim=NAME --keep    # reattach to it (the Go build cache stays warm)
//   … --claim=NAME                        # no --keep: deletes it
//
// As in the seed, the default router connection is a port-forward to svc/sandbox-router-svc;
// --router-url gives one directly (its bearer token: $ASB_ROUTER_TOKEN).
import { Command } from 'commander';
import { Sandbox, kubernetes, resolveConnection, type KubernetesConnection } from '@asb/sdk';
import { multiFlow, smokeFlow } from './flows.ts';

const FLOWS = ['smoke', 'multi', 'all'] as const;

export interface DemoFlags {
  flow: string;
  keep?: boolean;
  claim?: string;
  namespace: string;
  template: string;
  warmPool?: string;
  kubernetes?: boolean;
  kubeconfig?: string;
  routerUrl?: string;
}

export async function demo(flags: DemoFlags): Promise<void> {
  const flow = flags.flow as (typeof FLOWS)[number];
  if (!FLOWS.includes(flow)) throw new Error(`--flow=${flags.flow}: give one of ${FLOWS.join(', ')}`);
  const onCluster = flags.kubernetes || flags.kubeconfig !== undefined || flags.routerUrl !== undefined;
  const connection: KubernetesConnection | undefined = onCluster
    ? kubernetes({ kubeconfig: flags.kubeconfig, router: flags.routerUrl ? { url: flags.routerUrl } : undefined })
    : undefined;
  const where = connection
    ? { connection, namespace: flags.namespace }
    : resolveConnection({ namespace: flags.namespace });

  const sb = flags.claim
    ? await Sandbox.connect(flags.claim, { ...where, waitReadyMs: 180_000 })
    : await Sandbox.create({
        ...where,
        ...(flags.warmPool ? { warmPool: flags.warmPool } : { template: flags.template }),
        timeoutMs: 180_000,
      });
  const handle = sb.info.claim ?? sb.id;
  console.log(
    `==> ${flags.claim ? 'reattached to' : 'created'} ${connection ? `claim ${handle} (sandbox ${sb.id})` : `sandbox ${sb.id}`} in namespace ${flags.namespace}`,
  );
  try {
    if (flow === 'smoke' || flow === 'all') await smokeFlow(sb);
    if (flow === 'multi' || flow === 'all') await multiFlow(sb);
    console.log('==> PoC complete');
  } finally {
    if (flags.keep) {
      console.log(`==> kept ${handle}; reattach with --claim=${handle}, delete with --claim=${handle} and no --keep`);
      await sb.close();
    } else {
      await sb.kill();
      console.log(`==> deleted ${handle}`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const program = new Command('demo')
    .description('seed 000: build and run Go code in a sandbox (local engine, or a Kubernetes cluster)')
    .option('--flow <flow>', `which flow: ${FLOWS.join(', ')}`, 'all')
    .option('--keep', 'leave the sandbox (claim) alive afterwards')
    .option('--claim <name>', 'reattach to this claim (a sandbox name on the local engine) instead of creating one')
    .option('--namespace <ns>', 'namespace', 'default')
    .option('--template <name>', 'SandboxTemplate to claim from', 'go-runtime-template')
    .option('--warm-pool <name>', 'claim from this SandboxWarmPool instead (v1beta1 warmPoolRef)')
    .option('--kubernetes', 'on a Kubernetes cluster (default kubeconfig) instead of the local engine')
    .option('--kubeconfig <file>', "the cluster's kubeconfig (implies --kubernetes)")
    .option(
      '--router-url <url>',
      "the sandbox router's address (implies --kubernetes) [default: port-forward to svc/sandbox-router-svc]",
    );
  program.parse();
  demo(program.opts<DemoFlags>()).then(
    () => process.exit(0),
    (err) => {
      console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
      process.exit(1);
    },
  );
}
