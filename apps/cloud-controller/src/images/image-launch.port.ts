import type { ImageSpec } from '@koala/contracts';

/**
 * What the instances module needs from the images module (implemented by ImagesService):
 * resolve an image id the caller may launch into the spec an NC needs (digests + signed URLs).
 */
export interface ImageLaunchPort {
  /**
   * @throws Ec2Error InvalidAMIID.Malformed / InvalidAMIID.NotFound (missing, deregistered, or
   *   not launchable by this account), InvalidParameterValue when the image is not `available`
   *   or is a kernel/ramdisk image.
   */
  launchSpec(caller: { accountId: string; isAdmin: boolean }, imageId: string): Promise<{ spec: ImageSpec; architecture: string; rootDeviceName: string; platform?: string }>;
}
export const IMAGE_LAUNCH = Symbol('IMAGE_LAUNCH');
