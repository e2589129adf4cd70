// The four kinds as the engine's Kubernetes-style API serves them (/apis/{group}/{version}/...):
// what `asb get/describe/delete/scale` use, and what a program uses to manage claims and pools.
import { KINDS, KIND_NAMES, type Kind, type Version } from '@asb/api';
import { call, callJson, resolveConnection, type ConnectionOpts, type ResolvedConnection } from './connection.ts';
import { InvalidError } from './errors.ts';

/** A served object, as JSON (apiVersion, kind, metadata, spec, status). */
export interface ApiObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
    resourceVersion?: string;
    generation?: number;
    ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>;
  };
  spec: Record<string, unknown>;
  status?: Record<string, unknown> & {
    conditions?: Array<{ type: string; status: string; reason: string; message: string; lastTransitionTime: string }>;
  };
}

export interface ObjectEvent {
  type: string;
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

export interface ObjectsOpts extends ConnectionOpts {
  /** Which served version to speak. @default "v1beta1" (upstream's storage version) */
  version?: Version;
}

/** `sandbox`, `sandboxes`, `Sandbox`, `swp`, `sandboxclaim`… → the kind. */
export function resolveKind(word: string): Kind {
  const w = word.toLowerCase().split('.')[0]!;
  const kind = KIND_NAMES.find(
    (k) =>
      KINDS[k].plural === w ||
      KINDS[k].kind.toLowerCase() === w ||
      (KINDS[k].shortNames as readonly string[]).includes(w),
  );
  if (!kind)
    throw new InvalidError(
      `unknown resource type "${word}": use one of ${KIND_NAMES.map((k) => KINDS[k].plural).join(', ')} (or swp)`,
    );
  return kind;
}

export class Objects {
  private readonly conn: ResolvedConnection;
  private readonly version: Version;
  constructor(opts: ObjectsOpts = {}) {
    this.conn = resolveConnection(opts);
    this.version = opts.version ?? 'v1beta1';
  }

  private path(kind: Kind, namespace: string | null, name?: string): string {
    const k = KINDS[kind];
    const ns = namespace === null ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
    return `/apis/${k.group}/${this.version}${ns}/${k.plural}${name ? `/${encodeURIComponent(name)}` : ''}`;
  }

  async list(kind: Kind, opts: { allNamespaces?: boolean; labelSelector?: string } = {}): Promise<ApiObject[]> {
    const q = opts.labelSelector ? `?labelSelector=${encodeURIComponent(opts.labelSelector)}` : '';
    return (
      await callJson<{ items: ApiObject[] }>(
        this.conn,
        this.path(kind, opts.allNamespaces ? null : this.conn.namespace) + q,
        `list ${KINDS[kind].plural}`,
      )
    ).items;
  }

  get(kind: Kind, name: string): Promise<ApiObject> {
    return callJson<ApiObject>(this.conn, this.path(kind, this.conn.namespace, name), `get ${kind} "${name}"`);
  }

  create(obj: ApiObject | Record<string, unknown>, kind: Kind): Promise<ApiObject> {
    return callJson<ApiObject>(this.conn, this.path(kind, this.conn.namespace), `create ${kind}`, { json: obj });
  }

  /** JSON merge patch (RFC 7386): `{ spec: { replicas: 0 } }`. */
  patch(kind: Kind, name: string, patch: Record<string, unknown>): Promise<ApiObject> {
    return callJson<ApiObject>(this.conn, this.path(kind, this.conn.namespace, name), `patch ${kind} "${name}"`, {
      method: 'PATCH',
      body: JSON.stringify(patch),
      headers: { 'content-type': 'application/merge-patch+json' },
    });
  }

  async delete(kind: Kind, name: string): Promise<void> {
    await call(this.conn, this.path(kind, this.conn.namespace, name), `delete ${kind} "${name}"`, { method: 'DELETE' });
  }

  async events(kind: Kind, name: string): Promise<ObjectEvent[]> {
    return (
      await callJson<{ items: ObjectEvent[] }>(
        this.conn,
        `/v1/events/${encodeURIComponent(this.conn.namespace)}/${kind}/${encodeURIComponent(name)}`,
        `events of ${kind} "${name}"`,
      )
    ).items;
  }

  /** Streams the current objects (ADDED) and then every change until `signal` aborts. */
  async *watch(
    kind: Kind,
    opts: { allNamespaces?: boolean; labelSelector?: string; signal?: AbortSignal } = {},
  ): AsyncGenerator<{ type: string; object: ApiObject }> {
    const q = `?watch=true${opts.labelSelector ? `&labelSelector=${encodeURIComponent(opts.labelSelector)}` : ''}`;
    const res = await call(
      this.conn,
      this.path(kind, opts.allNamespaces ? null : this.conn.namespace) + q,
      `watch ${KINDS[kind].plural}`,
      { timeoutMs: 2 ** 31 - 1, signal: opts.signal },
    );
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim()) yield JSON.parse(line) as { type: string; object: ApiObject };
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
  }
}
