#!/usr/bin/env node
// asb: the command line of Agent Sandbox. One handler turns every error into one line on stderr
// and an exit code; commands are one file each under commands/.
import { Command } from '@commander-js/extra-typings';
import { DEFAULT_TEMPLATE, SandboxError } from '@asb/sdk';
import { RegistryError } from '@asb/oci';
import { ctxOf } from './context.ts';
import { runCommand } from './commands/run.ts';
import { execCommand } from './commands/exec.ts';
import { createCommand } from './commands/create.ts';
import { lsCommand } from './commands/ls.ts';
import { rmCommand } from './commands/rm.ts';
import { cpCommand } from './commands/cp.ts';
import { applyCommand } from './commands/apply.ts';
import { templatesCommand } from './commands/templates.ts';
import { getCommand } from './commands/get.ts';
import { describeCommand } from './commands/describe.ts';
import { deleteCommand } from './commands/delete.ts';
import { scaleCommand } from './commands/scale.ts';
import { mcpCommand } from './commands/mcp.ts';
import { logsCommand } from './commands/logs.ts';
import { portCommand, urlCommand } from './commands/ports.ts';
import {
  imageBuildCommand,
  imageLsCommand,
  imagePruneCommand,
  imagePullCommand,
  imagePushCommand,
  imageRmCommand,
} from './commands/images.ts';
import {
  resetCommand,
  resumeCommand,
  snapshotCreateCommand,
  snapshotLsCommand,
  snapshotRmCommand,
  suspendCommand,
} from './commands/snapshots.ts';
import { engineRun, engineStart, engineStatus, engineStop } from './commands/engine/lifecycle.ts';

const program = new Command('asb')
  .description('Agent Sandbox: isolated, disposable sandboxes for running untrusted code')
  .option('-n, --namespace <ns>', 'namespace', 'default')
  .option('-o, --output <format>', 'output format: table (default), json, yaml, name')
  .option('--url <url>', 'engine URL (default: the local engine, or $ASB_ENGINE_URL)')
  .option('--token <token>', 'bearer token (default: $ASB_TOKEN or $ASB_HOME/token)')
  .showHelpAfterError();

const ctx = () => ctxOf(program.opts());
const exit = (p: Promise<number>) =>
  p.then((code) => {
    process.exitCode = code;
  });
const collect = (v: string, prev: string[] = []) => [...prev, v];

program
  .command('run')
  .description("create a sandbox, run CMD in it with output streamed, delete it, exit with the command's code")
  .option('-t, --template <name>', 'SandboxTemplate', DEFAULT_TEMPLATE)
  .option('--image <ref>', 'run this OCI image instead of a template (pulled as Kubernetes would)')
  .option('--timeout <seconds>', 'kill the command after this many seconds')
  .option('-e, --env <NAME=VALUE>', 'environment variable (repeatable)', collect)
  .option('-w, --cwd <dir>', 'working directory inside the sandbox')
  .option('--keep', 'keep the sandbox afterwards')
  .argument('<cmd...>', 'the command, after --')
  .action((argv: string[], flags) => exit(runCommand(ctx(), argv, flags)));

program
  .command('create')
  .description('create a sandbox and print its id')
  .option('-t, --template <name>', 'SandboxTemplate', DEFAULT_TEMPLATE)
  .option('--image <ref>', 'run this OCI image instead of a template (pulled as Kubernetes would)')
  .option('--name <name>', 'sandbox name (default: generated)')
  .option('--from-snapshot <id>', 'a fork: start from this snapshot (processes, memory, files) instead of a template')
  .action((flags) => exit(createCommand(ctx(), flags)));

program
  .command('exec')
  .description('run CMD in an existing sandbox')
  .option('--timeout <seconds>', 'kill the command after this many seconds')
  .option('-e, --env <NAME=VALUE>', 'environment variable (repeatable)', collect)
  .option('-w, --cwd <dir>', 'working directory inside the sandbox')
  .option('-d, --detach', 'start it as a background process (asb logs ID -p PID follows it); prints its id')
  .argument('<id>')
  .argument('<cmd...>')
  .action((id: string, argv: string[], flags) => exit(execCommand(ctx(), id, argv, flags)));

program
  .command('cp')
  .description('copy a file: asb cp ./local ID:path, or asb cp ID:path ./local (- for stdin/stdout)')
  .argument('<src>')
  .argument('<dst>')
  .action((src: string, dst: string) => exit(cpCommand(ctx(), src, dst)));

program
  .command('ls')
  .alias('list')
  .description('list sandboxes')
  .action(() => exit(lsCommand(ctx())));
program
  .command('rm')
  .description('delete sandboxes (the claim that owns one goes with it)')
  .argument('<ids...>')
  .action((ids: string[]) => exit(rmCommand(ctx(), ids)));

program
  .command('get')
  .description('list or show objects: sandboxes, sandboxtemplates, sandboxclaims, sandboxwarmpools (swp)')
  .argument('<kind>')
  .argument('[names...]')
  .option('-l, --selector <labels>', 'label selector, key=value[,key=value]')
  .option('-A, --all-namespaces', 'every namespace')
  .option('-w, --watch', 'print changes as they happen')
  .option('--api-version <v>', 'v1beta1 (default) or v1alpha1, for -o json|yaml')
  .action((kind: string, names: string[], flags) => exit(getCommand(ctx(), kind, names, flags)));
program
  .command('describe')
  .description('an object with its conditions and events')
  .argument('<kind>')
  .argument('<name>')
  .action((kind: string, name: string) => exit(describeCommand(ctx(), kind, name)));
program
  .command('delete')
  .description('delete objects: asb delete KIND NAME..., or -f FILE')
  .argument('[args...]')
  .option('-f, --filename <file>', 'delete the objects a manifest names')
  .option('--ignore-not-found', 'an object that is already gone is not an error')
  .action((args: string[], flags) => exit(deleteCommand(ctx(), args, flags)));
program
  .command('scale')
  .description("set a warm pool's size, or a sandbox's replicas (0 suspends, 1 resumes)")
  .argument('<kind>')
  .argument('<name>')
  .requiredOption('--replicas <n>', 'desired replicas')
  .action((kind: string, name: string, flags) => exit(scaleCommand(ctx(), kind, name, flags)));

program
  .command('logs')
  .description("output of the sandbox's main process (the template's command), like kubectl logs")
  .argument('<id>')
  .option('-f, --follow', 'keep printing until the process exits')
  .option('-p, --process <id>', 'a background process instead of main')
  .action((id: string, flags) => exit(logsCommand(ctx(), id, flags)));
program
  .command('suspend')
  .description('suspend a sandbox; --snapshot keeps its processes and memory for resume (gVisor checkpoint)')
  .argument('<id>')
  .option('--snapshot', 'checkpoint processes and memory first')
  .action((id: string, flags) => exit(suspendCommand(ctx(), id, flags)));
program
  .command('resume')
  .description('resume a suspended sandbox, from its snapshot when it has one')
  .argument('<id>')
  .option('--discard-snapshot', 'start fresh processes (files kept) instead of restoring the snapshot')
  .action((id: string, flags) => exit(resumeCommand(ctx(), id, flags)));
program
  .command('reset')
  .description("back to the template's clean state in place: processes end, workspace and /tmp emptied")
  .argument('<id>')
  .action((id: string) => exit(resetCommand(ctx(), id)));
program
  .command('url')
  .description('a URL a browser opens to reach PORT inside the sandbox (exposes the port; the URL holds its token)')
  .argument('<id>')
  .argument('<port>')
  .action((id: string, port: string) => exit(urlCommand(ctx(), id, port)));
program
  .command('port')
  .description("a sandbox's exposed ports; with PORT, expose it (--close: take it back)")
  .argument('<id>')
  .argument('[port]')
  .option('--close', 'take the port back (a port its template declares stays)')
  .action((id: string, port: string | undefined, flags) => exit(portCommand(ctx(), id, port, flags)));
const snapshot = program.command('snapshot').description('memory snapshots of sandboxes (local engine, gVisor)');
snapshot
  .command('ls')
  .alias('list')
  .description('list snapshots, of one sandbox or all')
  .argument('[sandbox]')
  .action((sb: string | undefined) => exit(snapshotLsCommand(ctx(), sb)));
snapshot
  .command('create')
  .description('snapshot a running sandbox (it keeps running)')
  .argument('<sandbox>')
  .option('--golden', "make it its template's golden snapshot: new sandboxes of the template start from it")
  .action((sb: string, flags) => exit(snapshotCreateCommand(ctx(), sb, flags)));
snapshot
  .command('rm')
  .alias('delete')
  .description('delete snapshots')
  .argument('<ids...>')
  .action((ids: string[]) => exit(snapshotRmCommand(ctx(), ids)));

const image = program.command('image').description("images of this machine's engine, pulled from registries");
image
  .command('pull')
  .description('pull an image (progress per layer on stderr); prints reference@digest')
  .argument('<reference>')
  .option('--policy <policy>', 'Always (ask the registry), IfNotPresent or Never', 'Always')
  .action((ref: string, flags) => exit(imagePullCommand(ctx(), ref, flags)));
image
  .command('build')
  .description('build an image from a Dockerfile (RUN steps under gVisor, no network); prints reference@digest')
  .requiredOption('-t, --tag <name[:tag]>', 'the reference to store it as')
  .option('-f, --file <path>', 'the Dockerfile (default: DIR/Dockerfile)')
  .option('--build-arg <NAME=VALUE>', "a value for the Dockerfile's ARG NAME (repeatable)", collect)
  .option('--push', 'push it to the registry its tag names once built')
  .argument('<dir>', 'the build context: COPY reads only from here (COPY --from: from a stage or an image)')
  .action((dir: string, flags) => exit(imageBuildCommand(ctx(), dir, flags)));
image
  .command('push')
  .description('push an image of this machine to the registry its reference names')
  .argument('<reference>')
  .action((ref: string) => exit(imagePushCommand(ctx(), ref)));
image
  .command('ls')
  .alias('list')
  .description('list the images pulled')
  .action(() => exit(Promise.resolve(imageLsCommand(ctx()))));
image
  .command('rm')
  .alias('delete')
  .description('forget images (their files go at the next prune)')
  .argument('<references...>')
  .action((refs: string[]) => exit(Promise.resolve(imageRmCommand(ctx(), refs))));
image
  .command('prune')
  .description('delete the layers and root filesystems no image needs')
  .action(() => exit(Promise.resolve(imagePruneCommand(ctx()))));

program
  .command('apply')
  .description(
    'apply the upstream objects as YAML, unchanged (SandboxTemplate, Sandbox, SandboxClaim, SandboxWarmPool)',
  )
  .option('-f, --filename <file>', 'manifest file, or - for standard input')
  .action((flags) => exit(applyCommand(ctx(), flags.filename)));
program
  .command('templates')
  .description('list SandboxTemplates')
  .action(() => exit(templatesCommand(ctx())));

program
  .command('mcp')
  .description('MCP server: sandboxes as tools for agents, one sandbox per conversation (stdio, or --http PORT)')
  .option('--http <port>', "serve streamable HTTP on this port (0: any) instead of stdio; bearer token = the engine's")
  .option('--host <host>', 'address to listen on with --http', '127.0.0.1')
  .option('-t, --template <name>', "SandboxTemplate of each conversation's sandbox", DEFAULT_TEMPLATE)
  .option(
    '--idle-timeout <seconds>',
    "delete a conversation's sandbox after this long without a tool call (0: never)",
    '900',
  )
  .option('--sandbox <name>', 'reattach every conversation to this named sandbox (created if missing, kept afterwards)')
  .option('--kubernetes', 'sandboxes on a Kubernetes cluster (SandboxClaims) instead of the local engine')
  .option(
    '--kubeconfig <file>',
    "the cluster's kubeconfig (implies --kubernetes) [default: $KUBECONFIG, ~/.kube/config]",
  )
  .option(
    '--router-url <url>',
    "Kubernetes: the sandbox router's address [default: kubectl port-forward to svc/sandbox-router-svc]",
  )
  .option('--warm-pool <name>', 'Kubernetes: claim from this SandboxWarmPool')
  .action((flags) => exit(mcpCommand(ctx(), flags)));

const engine = program.command('engine').description('the local engine (gVisor sandboxes on this machine)');
engine
  .command('start')
  .description('start the engine in the background')
  .option('--port <port>')
  .action((flags) => exit(engineStart(ctx(), flags)));
engine
  .command('stop')
  .description('stop the engine: sandboxes stop, objects and files stay for the next start')
  .action(() => exit(engineStop(ctx())));
engine
  .command('status')
  .description('is the engine running, where, with which isolation')
  .action(() => exit(engineStatus(ctx())));
engine
  .command('run')
  .description('run the engine in the foreground')
  .option('--port <port>')
  .option('--host <host>')
  .action((flags) => exit(engineRun(flags)));

program.parseAsync(process.argv).catch((err: unknown) => {
  const msg = err instanceof SandboxError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`asb: ${msg}\n`);
  const notFound =
    (err instanceof SandboxError && err.status === 404) || (err instanceof RegistryError && err.code === 'NotFound');
  process.exitCode = notFound ? 4 : 1;
});
