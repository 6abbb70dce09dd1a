import type { KoalaDomainMetadata } from '@koala/libvirt';
import type { InstanceMeta } from './hypervisor.js';

/** InstanceMeta <-> the lib's Koala `<metadata>` (instanceId, accountId + extra elements). */
export function toDomainMetadata(m: InstanceMeta): KoalaDomainMetadata {
  const extra: Record<string, string> = {
    reservationId: m.reservationId,
    instanceType: m.instanceType,
    node: m.node,
    vcpus: String(m.resources.vcpus),
    memoryMiB: String(m.resources.memoryMiB),
    rootDiskGiB: String(m.resources.rootDiskGiB),
    ephemeralGiB: String(m.resources.ephemeralGiB),
    rootSha256: m.images.root,
  };
  if (m.images.kernel) extra.kernelSha256 = m.images.kernel;
  if (m.images.ramdisk) extra.ramdiskSha256 = m.images.ramdisk;
  return { instanceId: m.instanceId, accountId: m.accountId, extra };
}

const num = (v: string | undefined) => {
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : 0;
};

export function fromDomainMetadata(k: KoalaDomainMetadata): InstanceMeta {
  const x = k.extra ?? {};
  const images: InstanceMeta['images'] = { root: x.rootSha256 ?? '' };
  if (x.kernelSha256) images.kernel = x.kernelSha256;
  if (x.ramdiskSha256) images.ramdisk = x.ramdiskSha256;
  return {
    instanceId: k.instanceId,
    accountId: k.accountId,
    reservationId: x.reservationId ?? '',
    instanceType: x.instanceType ?? '',
    node: x.node ?? '',
    resources: { vcpus: num(x.vcpus), memoryMiB: num(x.memoryMiB), rootDiskGiB: num(x.rootDiskGiB), ephemeralGiB: num(x.ephemeralGiB) },
    images,
  };
}
