// Every route of the engine's API in one table: method, path, what its body is and which query
// parameters it reads, with their schemas. api.ts registers exactly these (its handlers are a
// Record over the route names, so a route without a handler, or a handler without a route, fails
// to compile), validates bodies and queries with these schemas, and the hostile-client suite
// (test/e2e/hostile-engine.test.ts) generates its requests from them.
import { z } from 'zod';
import { CreateSandboxBody, NamespaceName } from '@asb/api';

// The namespace rule and the create body are the wire contract's (@asb/api wire.ts).
export { NamespaceName, CreateSandboxBody };
export const SuspendBody = z.object({ snapshot: z.boolean().default(false) }).strict();
export const ResumeBody = z
  .object({
    discardSnapshot: z.boolean().default(false),
    timeoutMs: z.number().int().positive().max(600_000).default(120_000),
  })
  .strict();

const Flag = z.enum(['true', 'false', '1', '0']);
const NamespaceQuery = z.object({ namespace: NamespaceName.optional() });

/**
 * What a route's body is: JSON for a schema (an empty body is `{}` for `optional` ones), a served
 * Kubernetes object of the path's kind and version, a JSON merge patch of one, or manifests
 * (YAML, or JSON by content type). Routes without `body` ignore any body (it is still read,
 * capped, and discarded).
 */
export type BodySpec =
  | { kind: 'json'; schema: z.ZodType; optional?: boolean }
  | { kind: 'object' }
  | { kind: 'merge-patch' }
  | { kind: 'manifests' };

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Hono's syntax: `:name` is a path parameter. */
  path: string;
  body?: BodySpec;
  /** The query parameters the route reads; others are ignored, as the Kubernetes API does. */
  query?: z.ZodObject;
}

const OBJECTS = '/apis/:group/:version';

export const API_ROUTES = {
  info: { method: 'GET', path: '/v1/info' },
  // ---- the SDK's conveniences ----
  createSandbox: { method: 'POST', path: '/v1/sandboxes', body: { kind: 'json', schema: CreateSandboxBody } },
  suspendSandbox: {
    method: 'POST',
    path: '/v1/sandboxes/:ns/:name/suspend',
    body: { kind: 'json', schema: SuspendBody, optional: true },
  },
  resumeSandbox: {
    method: 'POST',
    path: '/v1/sandboxes/:ns/:name/resume',
    body: { kind: 'json', schema: ResumeBody, optional: true },
  },
  resetSandbox: { method: 'POST', path: '/v1/sandboxes/:ns/:name/reset' },
  snapshotSandbox: { method: 'POST', path: '/v1/sandboxes/:ns/:name/snapshots' },
  listSandboxSnapshots: { method: 'GET', path: '/v1/sandboxes/:ns/:name/snapshots' },
  listSandboxPorts: { method: 'GET', path: '/v1/sandboxes/:ns/:name/ports' },
  exposeSandboxPort: { method: 'POST', path: '/v1/sandboxes/:ns/:name/ports/:port' },
  unexposeSandboxPort: { method: 'DELETE', path: '/v1/sandboxes/:ns/:name/ports/:port' },
  listSnapshots: {
    method: 'GET',
    path: '/v1/snapshots',
    query: z.object({ namespace: NamespaceName.optional(), sandbox: z.string().max(253).optional() }),
  },
  getSnapshot: { method: 'GET', path: '/v1/snapshots/:id' },
  deleteSnapshot: { method: 'DELETE', path: '/v1/snapshots/:id' },
  listSandboxes: { method: 'GET', path: '/v1/sandboxes', query: NamespaceQuery },
  getSandbox: {
    method: 'GET',
    path: '/v1/sandboxes/:ns/:name',
    // Answer once the sandbox is ready (a Sandbox applied as YAML starts in the background); at most 10 min.
    query: z.object({ waitReadyMs: z.coerce.number().int().min(0).optional() }),
  },
  deleteSandbox: { method: 'DELETE', path: '/v1/sandboxes/:ns/:name' },
  apply: { method: 'POST', path: '/v1/apply', body: { kind: 'manifests' }, query: NamespaceQuery },
  listTemplates: { method: 'GET', path: '/v1/templates', query: NamespaceQuery },
  listEvents: { method: 'GET', path: '/v1/events/:ns/:kind/:name' },
  // ---- the objects, Kubernetes-style ----
  listObjects: {
    method: 'GET',
    path: `${OBJECTS}/:plural`,
    query: z.object({ labelSelector: z.string().optional(), watch: Flag.optional() }),
  },
  listNamespacedObjects: {
    method: 'GET',
    path: `${OBJECTS}/namespaces/:ns/:plural`,
    query: z.object({ labelSelector: z.string().optional(), watch: Flag.optional() }),
  },
  getObject: { method: 'GET', path: `${OBJECTS}/namespaces/:ns/:plural/:name` },
  createObject: { method: 'POST', path: `${OBJECTS}/namespaces/:ns/:plural`, body: { kind: 'object' } },
  replaceObject: { method: 'PUT', path: `${OBJECTS}/namespaces/:ns/:plural/:name`, body: { kind: 'object' } },
  patchObject: { method: 'PATCH', path: `${OBJECTS}/namespaces/:ns/:plural/:name`, body: { kind: 'merge-patch' } },
  deleteObject: {
    method: 'DELETE',
    path: `${OBJECTS}/namespaces/:ns/:plural/:name`,
    // Orphan is accepted as kubectl may send it, and deletes the dependents as Background does.
    query: z.object({ propagationPolicy: z.enum(['Foreground', 'Background', 'Orphan']).optional() }),
  },
} as const satisfies Record<string, RouteSpec>;

export type RouteName = keyof typeof API_ROUTES;
