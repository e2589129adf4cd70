// Where a container's image comes from on the local engine: the image itself, pulled into the
// engine's image store ($ASB_HOME/images) as its pull policy says, or, for the names of the host
// table (images.ts: the seeds' runtime images, python:*, golang:*, ...) while that image is not on
// this machine, the host's software in its place, said so in the sandbox's log. An image in the
// store always runs as itself.
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
  | { kind: 'pull'; reference: string; policy: PullPolicy; isRuntimeServer: boolean };

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
  env: NodeJS.ProcessEnv = process.env,
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
  const mapped = userMapping(container.image, env);
  if (mapped) return { kind: 'host', image: mapped };
  const builtin = builtinImage(container.image);
  if (builtin && !store.get(reference)) return { kind: 'host', image: builtin };
  return { kind: 'pull', reference, policy, isRuntimeServer: builtin?.isRuntimeServer ?? false };
}

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
      throw new ImageError('ErrImagePull', `Failed to pull image "${plan.reference}": ${why}${unused}`, retry);
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
