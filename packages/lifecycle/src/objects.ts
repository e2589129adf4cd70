// Small helpers on hub objects shared by the reconcilers: keys, owner references, status writes.
import { isDeepStrictEqual } from 'node:util';
import type { OwnerReference } from '@asb/api';
import type { AnyHub, KindName, ObjectStore, Result } from './substrate.ts';

export const keyOf = (namespace: string, name: string): string => `${namespace}/${name}`;
export function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

export function controllerRef(owner: AnyHub): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name!,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The owner reference marked controller, if any. */
export function controllerOf(obj: AnyHub): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller);
}

export function isControlledBy(obj: AnyHub, owner: AnyHub): boolean {
  return controllerOf(obj)?.uid === owner.metadata.uid;
}

/**
 * How long routine progress on the way to Ready (a Pod bound; a claim's "not ready" becoming the
 * Sandbox's "Pod exists with phase: Pending") may wait to be reported together with the
 * readiness that follows: one status write instead of two, for the Sandbox and for its claim.
 * What needs a user's attention (unschedulable, an error, a failure) is never held. Under a
 * burst of cold claims a Pod can take 20 s from binding to Ready on this kind of machine.
 */
export const STATUS_SETTLE_MS = 30_000;

/**
 * While routine progress first seen at `since` may still wait to be reported: the pass's result,
 * coming back when the wait ends (or earlier, if the pass asked to). Undefined once it may not.
 */
export function settleHold(since: string | undefined, now: Date, requeue: Result): Result | undefined {
  const holdMs = Date.parse(since ?? '') + STATUS_SETTLE_MS - now.getTime();
  return holdMs > 0 ? { requeueAfterMs: Math.min(holdMs, requeue.requeueAfterMs ?? Infinity) } : undefined;
}

/** Writes status only when it changed (as upstream does): no write, no watch event, no loop. */
export async function writeStatus<T extends AnyHub>(store: ObjectStore, obj: T, status: T['status']): Promise<T> {
  if (isDeepStrictEqual(obj.status ?? {}, status ?? {})) return obj;
  return store.updateStatus({ ...obj, status });
}

export const isDeleting = (obj: AnyHub): boolean => obj.metadata.deletionTimestamp !== undefined;

export const kindOf = (obj: AnyHub): KindName => obj.kind;
