// The local engine's sandboxes: one gVisor (or bubblewrap) sandbox per Sandbox, created from a
// SandboxTemplate's pod template, reached through the agent connection, destroyed on delete.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { AgentClient } from './agent-client.ts';
import { EngineError } from './errors.ts';
import { resolveImage, UnknownImageError } from './images.ts';
import type { Rootfs } from './rootfs.ts';
import type { ResourceLimits, SandboxRuntimeSpec } from './oci-spec.ts';
import type { DriverHandle, SandboxDriver, SandboxExit } from './drivers/driver.ts';
import { limitsOf, diskBytesOf, type PodTemplateLike } from './pod.ts';
import { createWorkspace, destroyWorkspace } from './workspace.ts';
import type { EngineConfig } from './config.ts';

export type Phase = 'Pending' | 'Running' | 'Failed' | 'Terminating';

export interface SandboxRecord {
  name: string;
  namespace: string;
  uid: string;
  template: string | undefined;
  containerId: string;
  phase: Phase;
  message: string;
  createdAt: Date;
  readyAt?: Date;
  limits: ResourceLimits;
  image: string;
  workspaceDir: string;
  /** The workspace's disk quota, when the engine could give it one. */
  diskQuotaBytes?: number;
  exit?: SandboxExit;
  handle?: DriverHandle;
  agent?: AgentClient;
}

export interface TemplateRecord {
  name: string;
  namespace: string;
  podTemplate: PodTemplateLike;
  createdAt: Date;
}

export interface CreateSandboxInput {
  namespace: string;
  name?: string;
  /** A SandboxTemplate's name, or… */
  template?: string;
  /** …a pod template given directly (a Sandbox object applied as YAML). */
  podTemplate?: PodTemplateLike;
}

const key = (ns: string, name: string) => `${ns}/${name}`;
const NAME_RE = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

export class SandboxManager {
  private readonly sandboxes = new Map<string, SandboxRecord>();
  private readonly templates = new Map<string, TemplateRecord>();

  constructor(
    private readonly config: EngineConfig,
    private readonly driver: SandboxDriver,
    private readonly rootfs: Rootfs,
    private readonly agent: { dir: string; preload?: string; snapshot: boolean; spawner?: string },
    private readonly log: Logger,
  ) {}

  // ---- templates ----
  putTemplate(t: Omit<TemplateRecord, 'createdAt'>): TemplateRecord {
    const rec = { ...t, createdAt: this.templates.get(key(t.namespace, t.name))?.createdAt ?? new Date() };
    this.templates.set(key(t.namespace, t.name), rec);
    return rec;
  }
  getTemplate(namespace: string, name: string): TemplateRecord {
    const t = this.templates.get(key(namespace, name));
    if (!t) {
      const known = this.listTemplates(namespace).map((x) => x.name);
      throw new EngineError('NotFound', `sandbox template "${name}" not found in namespace "${namespace}"${known.length ? `; known templates: ${known.join(', ')}` : ''}`);
    }
    return t;
  }
  listTemplates(namespace?: string): TemplateRecord[] {
    return [...this.templates.values()].filter((t) => namespace === undefined || t.namespace === namespace);
  }
  deleteTemplate(namespace: string, name: string): void {
    if (!this.templates.delete(key(namespace, name))) throw new EngineError('NotFound', `sandbox template "${name}" not found in namespace "${namespace}"`);
  }

  // ---- sandboxes ----
  get(namespace: string, name: string): SandboxRecord {
    const s = this.sandboxes.get(key(namespace, name));
    if (!s) throw new EngineError('NotFound', `sandbox "${name}" not found in namespace "${namespace}"; list sandboxes with \`asb ls\``);
    return s;
  }

  list(namespace?: string): SandboxRecord[] {
    return [...this.sandboxes.values()].filter((s) => namespace === undefined || s.namespace === namespace);
  }

  /** The agent connection of a running sandbox, or a typed error saying why there is none. */
  agentOf(namespace: string, name: string): AgentClient {
    const s = this.get(namespace, name);
    if (s.phase === 'Running' && s.agent?.closed) { s.phase = 'Failed'; s.message = 'the connection to the sandbox agent closed'; }
    if (s.phase !== 'Running' || !s.agent || s.agent.closed) {
      throw new EngineError('Unavailable', `sandbox "${name}" is ${s.phase}${s.message ? `: ${s.message}` : ''}`);
    }
    return s.agent;
  }

  async create(input: CreateSandboxInput): Promise<SandboxRecord> {
    if (!input.template && !input.podTemplate) throw new EngineError('Invalid', 'give a template name or a pod template', [{ field: 'template', message: 'required' }]);
    const template = input.template ? this.getTemplate(input.namespace, input.template) : { name: undefined, podTemplate: input.podTemplate! };
    const name = input.name ?? `sandbox-${randomBytes(4).toString('hex')}`;
    if (!NAME_RE.test(name)) throw new EngineError('Invalid', `metadata.name: "${name}" must be a DNS label: lowercase letters, digits and "-", starting with a letter, at most 63 characters`, [{ field: 'metadata.name', message: 'invalid DNS label' }]);
    const k = key(input.namespace, name);
    if (this.sandboxes.has(k)) throw new EngineError('AlreadyExists', `sandbox "${name}" already exists in namespace "${input.namespace}"`);

    const container = template.podTemplate.spec.containers[0];
    if (!container) throw new EngineError('Invalid', `template "${template.name ?? name}" has no container`);
    let image;
    try { image = resolveImage(container.image); } catch (err) {
      if (err instanceof UnknownImageError) throw new EngineError('Invalid', err.message, [{ field: 'spec.podTemplate.spec.containers[0].image', message: err.message }]);
      throw err;
    }
    const uid = randomUUID();
    const dir = join(this.config.home, 'sandboxes', input.namespace, name);
    const workspaceDir = join(dir, 'workspace');
    const rec: SandboxRecord = {
      name, namespace: input.namespace, uid, template: template.name, containerId: `asb-${uid.slice(0, 13)}`,
      phase: 'Pending', message: 'starting', createdAt: new Date(), limits: limitsOf(container, this.config), image: container.image, workspaceDir,
    };
    this.sandboxes.set(k, rec);
    try {
      const t0 = Date.now();
      const ws = await createWorkspace(dir, diskBytesOf(container, this.config), this.driver.workspaceOwner(), this.log);
      rec.diskQuotaBytes = ws.quotaBytes;
      const env: Record<string, string> = {};
      for (const e of container.env ?? []) {
        // Secrets and config maps do not exist on one machine: say so rather than start without them.
        if (e.value === undefined && e.valueFrom !== undefined) {
          throw new EngineError('Invalid', `env ${e.name} takes its value from a secret or config map (valueFrom), which the local engine cannot resolve; give it a value`, [{ field: 'spec.podTemplate.spec.containers[0].env', message: 'valueFrom is not supported locally' }]);
        }
        if (e.value !== undefined) env[e.name] = e.value;
      }
      const main = image.isRuntimeServer ? [] : [...(container.command ?? []), ...(container.args ?? [])];
      const spec: SandboxRuntimeSpec = {
        hostname: name, rootfs: this.rootfs, workspaceDir, agentDir: this.agent.dir, preload: this.agent.preload, snapshot: this.agent.snapshot, spawner: this.agent.spawner, image, env,
        mainArgv: main.length ? main : undefined, workingDir: container.workingDir ?? '/app', limits: rec.limits, tmpfsBytes: this.config.tmpfsBytes,
      };
      const logFile = join(dir, 'sandbox.log');
      const tWorkspace = Date.now();
      rec.handle = await this.driver.start(rec.containerId, spec, { dir, logFile });
      const tSpawned = Date.now();
      // A lost connection means the sandbox no longer serves, even before its exit is seen.
      rec.agent = new AgentClient(rec.handle.socket, (reason) => {
        if (rec.phase === 'Running') { rec.phase = 'Failed'; rec.message = reason; }
      });
      rec.handle.exited.then((exit) => this.onExit(rec, exit, logFile));
      await this.waitReady(rec, logFile);
      rec.phase = 'Running';
      rec.message = 'the sandbox agent is serving';
      rec.readyAt = new Date();
      // Where a cold start's time goes, for whoever reads the log (and the benchmark's notes).
      const phasesMs = { workspace: tWorkspace - t0, spawn: tSpawned - tWorkspace, agentReady: rec.readyAt.getTime() - tSpawned };
      this.log.info({ sandbox: name, namespace: input.namespace, containerId: rec.containerId, ms: rec.readyAt.getTime() - rec.createdAt.getTime(), phasesMs }, 'sandbox ready');
      return rec;
    } catch (err) {
      await this.delete(input.namespace, name).catch(() => undefined);
      throw err;
    }
  }

  private async waitReady(rec: SandboxRecord, logFile: string): Promise<void> {
    const deadline = Date.now() + this.config.readyTimeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      if (rec.exit) break;
      try {
        const res = await rec.agent!.json<{ status?: string }>('GET', '/', undefined, Math.max(100, deadline - Date.now()));
        if (res.status === 200) return;
        lastError = `agent answered ${res.status}`;
      } catch (err) {
        lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const tail = tailOf(logFile);
    throw new EngineError(rec.exit ? 'Internal' : 'Timeout', `sandbox "${rec.name}" did not become ready${rec.exit ? ` (its process exited with code ${rec.exit.code})` : ` within ${this.config.readyTimeoutMs} ms`}: ${lastError}${tail ? `\n--- sandbox log ---\n${tail}` : ''}`);
  }

  private onExit(rec: SandboxRecord, exit: SandboxExit, logFile: string): void {
    rec.exit = exit;
    rec.agent?.close();
    if (rec.phase === 'Terminating') return;
    rec.phase = 'Failed';
    rec.message = exit.oomKilled
      ? `the sandbox was killed at its memory limit (${rec.limits.memoryBytes} bytes); raise resources.limits.memory in the template`
      : `the sandbox's processes ended (exit code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''})`;
    this.log.warn({ sandbox: rec.name, namespace: rec.namespace, exit, log: tailOf(logFile, 800) }, 'sandbox exited');
  }

  async delete(namespace: string, name: string): Promise<void> {
    const rec = this.get(namespace, name);
    rec.phase = 'Terminating';
    rec.agent?.close();
    await this.driver.destroy(rec.containerId);
    await destroyWorkspace(join(this.config.home, 'sandboxes', namespace, name));
    this.sandboxes.delete(key(namespace, name));
    this.log.info({ sandbox: name, namespace }, 'sandbox deleted');
  }

  async deleteAll(): Promise<void> {
    await Promise.all(this.list().map((s) => this.delete(s.namespace, s.name).catch((err) => this.log.error({ err, sandbox: s.name }, 'delete failed'))));
  }

  /** Without a durable store (issue 3) a restarted engine cannot re-adopt: it reaps what it finds. */
  async reapOrphans(): Promise<number> {
    const ids = await this.driver.list().catch(() => []);
    const known = new Set(this.list().map((s) => s.containerId));
    const orphans = ids.filter((id) => id.startsWith('asb-') && !known.has(id));
    await Promise.all(orphans.map((id) => this.driver.destroy(id).catch(() => undefined)));
    return orphans.length;
  }
}

function tailOf(file: string, bytes = 2000): string {
  try { const b = readFileSync(file); return b.subarray(Math.max(0, b.length - bytes)).toString('utf8').trim(); } catch { return ''; }
}
