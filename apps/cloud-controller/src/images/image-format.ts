/**
 * Disk image format detection from the first bytes of an image (no qemu-img needed).
 * qcow2: magic `QFI\xfb`; a qcow2 that names a backing file or an external data file is refused,
 * since it could make the hypervisor read a file of the host.
 */
export type ImageFormat = 'raw' | 'qcow2';

/** Bytes `detectImageFormat` wants to see (the qcow2 header fields it reads end before 80). */
export const FORMAT_PROBE_BYTES = 512;

const QCOW2_MAGIC = 0x514649fb;

export interface ImageFormatInfo {
  format: ImageFormat;
  /** qcow2: the virtual disk size from the header. */
  virtualSize?: number;
  /** Why the image must not be used (a qcow2 with a backing or external data file), if any. */
  unsafe?: string;
}

export function detectImageFormat(head: Buffer): ImageFormatInfo {
  if (head.length < 4 || head.readUInt32BE(0) !== QCOW2_MAGIC) return { format: 'raw' };
  if (head.length < 32) return { format: 'qcow2', unsafe: 'truncated qcow2 header' };
  const version = head.readUInt32BE(4);
  const backingOffset = head.readBigUInt64BE(8);
  const virtualSize = Number(head.readBigUInt64BE(24));
  if (version !== 2 && version !== 3) return { format: 'qcow2', virtualSize, unsafe: `unsupported qcow2 version ${version}` };
  if (backingOffset !== 0n) return { format: 'qcow2', virtualSize, unsafe: 'qcow2 image with a backing file' };
  // v3: incompatible_features at offset 72, bit 2 = external data file
  if (version === 3 && head.length >= 80 && (head.readBigUInt64BE(72) & 4n) !== 0n) {
    return { format: 'qcow2', virtualSize, unsafe: 'qcow2 image with an external data file' };
  }
  return { format: 'qcow2', virtualSize };
}
