import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { Ec2Error, isValidId } from '@koala/ec2-query';
import { IMAGE_LAUNCH, type ImageLaunchPort } from '../images/image-launch.port.js';

/**
 * The images module's `IMAGE_LAUNCH` provider, looked up when first needed (anywhere in the
 * app), so the instances module does not depend on how the images module is wired. Without a
 * provider every image id is unknown (InvalidAMIID.NotFound).
 */
@Injectable()
export class ImageLaunchAdapter implements ImageLaunchPort {
  private real?: ImageLaunchPort;

  constructor(@Inject(ModuleRef) private readonly moduleRef: ModuleRef) {}

  launchSpec(caller: { accountId: string; isAdmin: boolean }, imageId: string) {
    const real = this.resolve();
    if (!real) {
      if (!['emi', 'ami', 'eki', 'eri'].some((p) => isValidId(p, imageId))) throw Ec2Error.malformed('InvalidAMIID.Malformed', imageId);
      throw Ec2Error.notFound('InvalidAMIID.NotFound', imageId);
    }
    return real.launchSpec(caller, imageId);
  }

  private resolve(): ImageLaunchPort | undefined {
    if (!this.real) {
      try {
        const found = this.moduleRef.get<ImageLaunchPort>(IMAGE_LAUNCH, { strict: false });
        if (found && found !== this) this.real = found;
      } catch {
        return undefined;
      }
    }
    return this.real;
  }
}
