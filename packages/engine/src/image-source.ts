// Where a container's image comes from on the local engine: the image itself, pulled into the
// engine's image store ($ASB_HOME/images) as its pull policy says. Only when asked
// (ASB_HOST_IMAGES=1, or a name the user mapped with ASB_IMAGE_MAP) does the host table
// (images.ts: the seeds' runtime images, python:*, golang:*, ...) stand in with the host's
// software for an image that is not on this machine, said so in the sandbox's log. An image in
// the store always runs as itself.
import {
  ContainerConfigError,
  InvalidReferenceError,
  RegistryError,
  defaultPullPolicy,
  formatReference,
  parseReference,
  processConfig,
  type ImageStore,
  type LocalImage as OciImage,
  type ProcessConfig,
  type PullPolicy,
} from '@asb/oci';
import { builtinImage, userMapping, type LocalImage as HostImage } from './images.ts';
import type { ContainerLike } from './pod.ts';
import type { PullSecrets } from './pull-secrets.ts';

export type ImagePlan =
  | { kind: 'host'; image: HostImage }
  | {
      kind: 'pull';
      reference: string;
      policy: PullPolicy;
      isRuntimeServer: boolean;
      /** The host table knows the name (ASB_HOST_IMAGES=1 would stand in for it): said on failure. */
      hostTableKnows: boolean;
    };

/** Why a container cannot start yet, in the words the kubelet uses for a container's waiting state. */
export class ImageError extends Error {
  constructor(
    readonly reason: 'ErrImagePull' | 'ErrImageNeverPull' | 'InvalidImageName' | 'CreateContainerConfigError',
    message: string,
    /** Worth trying again later (an unreachable registry, a tag not pushed yet). */
    readonly retry: boolean,
  ) {
    super(message);
    this.name = 'ImageError';
  }
}

export function planImage(
  container: ContainerLike,
  store: ImageStore,
  opts: { hostImages: boolean; env?: NodeJS.ProcessEnv },
): ImagePlan {
  let reference: string;
  try {
    reference = formatReference(parseReference(container.image));
  } catch (err) {
    if (err instanceof InvalidReferenceError) {
      throw new ImageError(
        'InvalidImageName',
        `Failed to apply default image tag "${container.image}": ${err.message}`,
        false,
      );
    }
    throw err;
  }
  const policy = (container.imagePullPolicy as PullPolicy | undefined) ?? defaultPullPolicy(container.image);
  // An ASB_IMAGE_MAP entry is the user's own choice; the built-in table only stands in.
  const mapped = userMapping(container.image, opts.env ?? process.env);
  if (mapped) return { kind: 'host', image: mapped };
  const builtin = builtinImage(container.image);
  if (builtin && opts.hostImages && !store.get(reference)) return { kind: 'host', image: builtin };
  return {
    kind: 'pull',
    reference,
    policy,
    isRuntimeServer: builtin?.isRuntimeServer ?? false,
    hostTableKnows: builtin !== undefined,
  };
}

/** For the names the host table knows: how a machine without the registry gets them. */
export const OFFLINE_HINT =
  " (offline? `node --import tsx scripts/runtime-images.ts` builds the seeds' runtime images here and serves" +
  " them through a mirror; ASB_HOST_IMAGES=1 runs the host's software in their place)";

/**
 * Pulls as the policy says; a registry's refusal becomes the kubelet's ErrImagePull, and an image
 * that is not here under `Never` its ErrImageNeverPull (in the kubelet's words).
 */
export async function pullFor(
  store: ImageStore,
  plan: Extract<ImagePlan, { kind: 'pull' }>,
  secrets?: PullSecrets,
): Promise<OciImage> {
  try {
    return await store.pull(plan.reference, { policy: plan.policy, credentials: secrets?.credentials });
  } catch (err) {
    if (err instanceof RegistryError && plan.policy === 'Never' && err.code === 'NotFound') {
      // Never asks no registry: the image may still be pulled onto the machine (`asb image pull`).
      throw new ImageError(
        'ErrImageNeverPull',
        `Container image "${plan.reference}" is not present with pull policy of Never`,
        true,
      );
    }
    if (err instanceof RegistryError) {
      const retry = err.code !== 'Unsupported';
      // The registry's words, without the reference they begin with (the message names it once).
      const why = err.message.startsWith(`${plan.reference}: `)
        ? err.message.slice(plan.reference.length + 2)
        : err.message;
      const unused = secrets?.problems.length ? ` (${secrets.problems.join('; ')})` : '';
      throw new ImageError(
        'ErrImagePull',
        `Failed to pull image "${plan.reference}": ${why}${unused}${plan.hostTableKnows ? OFFLINE_HINT : ''}`,
        retry,
      );
    }
    throw err;
  }
}

/** The process the container runs, as Kubernetes merges the image's config with the spec. */
export function processOf(image: OciImage, container: ContainerLike, rootfs: string): ProcessConfig {
  try {
    return processConfig(image.config, container, rootfs);
  } catch (err) {
    if (err instanceof ContainerConfigError) throw new ImageError('CreateContainerConfigError', err.message, false);
    throw err;
  }
}
