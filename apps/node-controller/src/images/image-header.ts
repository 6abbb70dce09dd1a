/**
 * What an image's first bytes say it is. The NC re-checks what a launch message claims, so a
 * forged message (or a crafted image) cannot make QEMU open a host file: a qcow2 image may name
 * a backing file or an external data file, which QEMU would open with the NC's rights.
 */
export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
/** Enough bytes for the qcow2 v2 and v3 headers. */
export const IMAGE_HEADER_BYTES = 104;
const INCOMPAT_EXTERNAL_DATA_FILE = 1n << 2n;

export interface ImageHeaderCheck {
  format: 'raw' | 'qcow2';
  /** qcow2: the guest-visible disk size from the header (a raw image's is its length). */
  virtualSize?: number;
  /** Why the image must not be used, or undefined when it is acceptable. */
  problem?: string;
}

/** Reads the start of an image (at least IMAGE_HEADER_BYTES, or the whole image if shorter). */
export function inspectImageHeader(head: Uint8Array): ImageHeaderCheck {
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length < 4 || v.getUint32(0) !== QCOW2_MAGIC) return { format: 'raw' };
  if (head.length < 72) return { format: 'qcow2', problem: 'truncated qcow2 header' };
  const version = v.getUint32(4);
  if (version !== 2 && version !== 3) return { format: 'qcow2', problem: `unsupported qcow2 version ${version}` };
  if (v.getBigUint64(8) !== 0n || v.getUint32(16) !== 0) return { format: 'qcow2', problem: 'qcow2 image with a backing file' };
  if (version === 3) {
    if (head.length < IMAGE_HEADER_BYTES) return { format: 'qcow2', problem: 'truncated qcow2 header' };
    if (v.getBigUint64(72) & INCOMPAT_EXTERNAL_DATA_FILE) return { format: 'qcow2', problem: 'qcow2 image with an external data file' };
  }
  return { format: 'qcow2', virtualSize: Number(v.getBigUint64(24)) };
}

/** The problem with using an image whose header is `head` as `claimed`, or undefined. */
export function imageHeaderProblem(head: Uint8Array, claimed: 'raw' | 'qcow2'): string | undefined {
  const found = inspectImageHeader(head);
  if (found.problem) return found.problem;
  if (found.format !== claimed) return `the image is ${found.format}, not ${claimed} as the launch says`;
  return undefined;
}
