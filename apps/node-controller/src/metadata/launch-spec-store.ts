import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { InstanceSpec } from '@koala/contracts';

/**
 * What the metadata service needs of a launch, kept for the instance's life on this node: the
 * launch spec minus what only the launch uses (signed image URLs, sizes, digests).
 */
export const LaunchRecord = InstanceSpec.pick({
  instanceId: true,
  reservationId: true,
  accountId: true,
  instanceType: true,
  userData: true,
  keyName: true,
  publicKey: true,
  hostname: true,
  availabilityZone: true,
  launchIndex: true,
  network: true,
  metadataOptions: true,
}).extend({
  virtualizationType: z.enum(['hvm', 'paravirtual']),
  imageId: z.string(),
  kernelId: z.string().optional(),
  ramdiskId: z.string().optional(),
  /** Whether the instance type has an ephemeral disk (block-device-mapping/ephemeral0). */
  ephemeral: z.boolean(),
  /** When this NC accepted the launch (the identity document's pendingTime). */
  pendingTime: z.string(),
});
export type LaunchRecord = z.infer<typeof LaunchRecord>;

export function launchRecordOf(spec: InstanceSpec, acceptedAt: Date): LaunchRecord {
  const img = spec.image;
  return {
    instanceId: spec.instanceId,
    reservationId: spec.reservationId,
    accountId: spec.accountId,
    instanceType: spec.instanceType,
    virtualizationType: img.virtualizationType,
    imageId: img.root.imageId,
    ...(img.virtualizationType === 'paravirtual' ? { kernelId: img.kernel.imageId, ...(img.ramdisk ? { ramdiskId: img.ramdisk.imageId } : {}) } : {}),
    ...(spec.userData !== undefined ? { userData: spec.userData } : {}),
    ...(spec.keyName !== undefined ? { keyName: spec.keyName } : {}),
    ...(spec.publicKey !== undefined ? { publicKey: spec.publicKey } : {}),
    hostname: spec.hostname,
    availabilityZone: spec.availabilityZone,
    launchIndex: spec.launchIndex,
    ephemeral: spec.resources.ephemeralGiB > 0,
    ...(spec.network ? { network: spec.network } : {}),
    ...(spec.metadataOptions ? { metadataOptions: spec.metadataOptions } : {}),
    pendingTime: acceptedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
}

/** Port: launch records of this node's instances, surviving an NC restart. */
export interface LaunchSpecStore {
  put(record: LaunchRecord): Promise<void>;
  get(instanceId: string): Promise<LaunchRecord | undefined>;
  remove(instanceId: string): Promise<void>;
}
export const LAUNCH_SPEC_STORE = Symbol('LAUNCH_SPEC_STORE');

const ID = /^i-[0-9a-f]{8,17}$/;

/**
 * One JSON file per instance (`<dir>/<id>.json`, 0600: user-data may hold secrets), written
 * atomically (temp file + rename), cached in memory. The directory is the node's own
 * (`$KOALA_HOME/nc/<node>/instances`), so it can be read without libvirtd.
 */
export class FsLaunchSpecStore implements LaunchSpecStore {
  private readonly cache = new Map<string, LaunchRecord>();

  constructor(private readonly dir: string) {}

  async put(record: LaunchRecord): Promise<void> {
    const r = LaunchRecord.parse(record);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = join(this.dir, `${r.instanceId}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(r) + '\n', { mode: 0o600 });
    await rename(tmp, file);
    this.cache.set(r.instanceId, r);
  }

  async get(instanceId: string): Promise<LaunchRecord | undefined> {
    if (!ID.test(instanceId)) return undefined;
    const hit = this.cache.get(instanceId);
    if (hit) return hit;
    let text: string;
    try {
      text = await readFile(join(this.dir, `${instanceId}.json`), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return undefined; // a torn or foreign file: no metadata rather than an error
    }
    const parsed = LaunchRecord.safeParse(json);
    if (!parsed.success || parsed.data.instanceId !== instanceId) return undefined;
    this.cache.set(instanceId, parsed.data);
    return parsed.data;
  }

  async remove(instanceId: string): Promise<void> {
    if (!ID.test(instanceId)) return;
    this.cache.delete(instanceId);
    await unlink(join(this.dir, `${instanceId}.json`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}
