// Which of a sandbox's ports the engine reaches for a client, and the preview URLs a browser
// opens them with. A port is exposed when the sandbox's containers declare it (`ports[]
// .containerPort`, as on Kubernetes) or when it was asked for through the API (`asb url`,
// `sandbox.getUrl(port)`), which records it on the Sandbox in ANNOTATION_EXPOSED_PORTS. The
// runtime API (8888) is never a preview: a preview token must not run commands.
//
// A preview URL is `http://<port>-<sandbox>.<namespace>.localhost:<engine port>/`: browsers and
// curl resolve every *.localhost name to the loopback address, so the engine's own listener
// answers, and the name says which sandbox and port. Its token is an HMAC of the sandbox (its uid:
// a new sandbox of the same name gets a new one) and the port under the engine's token, so it
// opens that port of that sandbox and nothing else, and needs no storage.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Sandbox } from '@asb/api';

export const ANNOTATION_EXPOSED_PORTS = 'sandbox.asb.dev/exposed-ports';
/** The runtime API's port in a sandbox (upstream's runtime images listen there). */
export const RUNTIME_PORT = 8888;
/** The query parameter that carries a preview token once (it becomes a cookie). */
export const PREVIEW_PARAM = 'asb_preview';
export const PREVIEW_COOKIE = 'asb_preview';

export function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Ports asked for through the API, from the annotation (anything else in it is ignored). */
export function requestedPorts(sb: Sandbox): number[] {
  const text = sb.metadata.annotations?.[ANNOTATION_EXPOSED_PORTS] ?? '';
  return text
    .split(',')
    .map((p) => Number(p.trim()))
    .filter(isPort);
}

export function exposedPorts(sb: Sandbox): number[] {
  const declared = sb.spec.podTemplate.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
  return [...new Set([...declared, ...requestedPorts(sb)])];
}

export function previewToken(secret: string, sb: Sandbox, port: number): string {
  const { namespace, name, uid } = sb.metadata;
  return createHmac('sha256', secret).update(`preview\0${namespace}\0${name}\0${uid}\0${port}`).digest('base64url');
}

export function previewTokenMatches(secret: string, sb: Sandbox, port: number, token: string): boolean {
  const want = Buffer.from(previewToken(secret, sb, port));
  const got = Buffer.from(token);
  return got.length === want.length && timingSafeEqual(got, want);
}

export function previewHost(namespace: string, name: string, port: number): string {
  return `${port}-${name}.${namespace}.localhost`;
}

const PREVIEW_HOST =
  /^(\d{1,5})-([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.localhost(?::\d+)?$/;

/** The sandbox and port a request's Host names, when it is a preview host. */
export function parsePreviewHost(
  host: string | undefined,
): { namespace: string; name: string; port: number } | undefined {
  const m = PREVIEW_HOST.exec((host ?? '').toLowerCase());
  if (!m || !isPort(Number(m[1]))) return undefined;
  return { port: Number(m[1]), name: m[2]!, namespace: m[3]! };
}
