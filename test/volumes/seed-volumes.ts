/**
 * Volumes and snapshots written straight into the CLC's database (volumes, snapshots,
 * createVolumePermission rows, tags), for tests and benchmarks that need thousands of them:
 * creating them through a zone's SC would take minutes and test nothing DescribeVolumes or
 * DescribeSnapshots care about. Deterministic apart from the ids (newId).
 */
import type { VolumeState } from '@koala/contracts';
import { newId } from '@koala/ec2-query';
import type { DataSource } from 'typeorm';
import type { AttachState } from '../../apps/cloud-controller/src/volumes/volume.entity.js';
import { VolumeEntity } from '../../apps/cloud-controller/src/volumes/volume.entity.js';
import { SnapshotEntity, SnapshotVolumePermissionEntity, type SnapshotState } from '../../apps/cloud-controller/src/snapshots/snapshot.entity.js';
import { TagEntity } from '../../apps/cloud-controller/src/tags/tag.entity.js';
import { prng } from '../support/prng.js';

export interface SeededVolume {
  id: string;
  accountId: string;
  zone: string;
  state: VolumeState;
  /** Deleted long before the retention period: never visible. */
  expired: boolean;
  sizeGiB: number;
  volumeType: string;
  iops: number | null;
  snapshotId: string | null;
  attach: { instanceId: string; device: string; state: AttachState; time: Date } | null;
  /** Set on some detached volumes too, where DescribeVolumes must not show it. */
  deleteOnTermination: boolean;
  createdAt: Date;
  tags: Record<string, string>;
}

export interface SeededSnapshot {
  id: string;
  accountId: string;
  volumeId: string;
  zone: string;
  volumeSizeGiB: number;
  state: SnapshotState;
  progress: number;
  description: string;
  startTime: Date;
  isPublic: boolean;
  /** createVolumePermission: accounts (never the owner) that may restore it. */
  sharedWith: string[];
  tags: Record<string, string>;
}

const VOLUME_STATES: VolumeState[] = ['available', 'available', 'available', 'available', 'in-use', 'in-use', 'in-use', 'creating', 'deleting', 'deleted', 'error'];
const SIZES = [1, 2, 3, 4, 8, 10, 16, 100];
const TYPES: Array<[string, number | null]> = [
  ['standard', null],
  ['gp2', null],
  ['gp3', 3000],
  ['io1', 400],
  ['sc1', null],
];
const ATTACH_STATES: AttachState[] = ['attached', 'attached', 'attached', 'attaching', 'detaching'];
const DEVICES = ['/dev/sdf', '/dev/sdg', '/dev/sdh'];
const SNAPSHOT_STATES: SnapshotState[] = ['completed', 'completed', 'completed', 'pending', 'error'];
/** Name tags and descriptions chosen so that LIKE without escaping would match the wrong ones (`_`, `%`, `\`). */
export const NAMES = [
  (n: number) => `web-${n}`,
  (n: number) => `db_${n % 10}`,
  (n: number) => `dbx${n % 10}`,
  (n: number) => `50%off-${n}`,
  (n: number) => `50xoff-${n}`,
  (n: number) => `back\\slash-${n % 10}`,
];
const day = (rnd: () => number) => new Date(Date.UTC(2026, 0, 1 + Math.floor(rnd() * 20), Math.floor(rnd() * 24), Math.floor(rnd() * 60), 0, Math.floor(rnd() * 1000)));

/**
 * `count` volumes spread over `accounts` and `zones`: a mix of states (in-use ones attached, a few
 * deleted ones expired), sizes, types (iops for gp3/io1), days (2026-01-01 … 2026-01-20), a source
 * snapshot on some, and tags (`Name` on all but deleted ones, `env` on two thirds of those).
 */
export function makeVolumes(opts: { count: number; accounts: readonly string[]; zones: readonly string[]; seed?: number }): SeededVolume[] {
  const rnd = prng(opts.seed ?? 7);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  return Array.from({ length: opts.count }, (_, n): SeededVolume => {
    const state = pick(VOLUME_STATES);
    const [volumeType, iops] = pick(TYPES);
    // A deleted volume has lost its tags (the CLC deletes them with it).
    const tags: Record<string, string> = state === 'deleted' ? {} : { Name: NAMES[n % NAMES.length]!(n) };
    if (state !== 'deleted' && n % 3 !== 0) tags.env = n % 3 === 1 ? 'prod' : 'dev';
    const createdAt = day(rnd);
    return {
      id: newId('vol'),
      accountId: pick(opts.accounts),
      zone: pick(opts.zones),
      state,
      expired: state === 'deleted' && rnd() < 0.5,
      sizeGiB: pick(SIZES),
      volumeType,
      iops,
      snapshotId: n % 4 === 0 ? newId('snap') : null,
      attach: state === 'in-use' ? { instanceId: newId('i'), device: pick(DEVICES), state: pick(ATTACH_STATES), time: new Date(createdAt.getTime() + 3600_000) } : null,
      deleteOnTermination: n % 5 === 0,
      createdAt,
      tags,
    };
  });
}

/**
 * `count` snapshots of `volumes` (their account, zone and size): a mix of states and progress,
 * descriptions, days, public ones (one in ten) and ones shared with other `accounts` (one in four),
 * tags as makeVolumes gives.
 */
export function makeSnapshots(opts: { count: number; volumes: readonly SeededVolume[]; accounts: readonly string[]; owners?: readonly string[]; seed?: number }): SeededSnapshot[] {
  const rnd = prng(opts.seed ?? 11);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const owners = opts.owners ?? opts.accounts;
  const volumes = opts.volumes.filter((v) => owners.includes(v.accountId));
  return Array.from({ length: opts.count }, (_, n): SeededSnapshot => {
    const v = pick(volumes);
    const state = pick(SNAPSHOT_STATES);
    const others = opts.accounts.filter((a) => a !== v.accountId);
    const sharedWith = rnd() < 0.25 ? others.filter(() => rnd() < 0.6) : [];
    const tags: Record<string, string> = { Name: NAMES[(n + 1) % NAMES.length]!(n) };
    if (n % 3 !== 0) tags.env = n % 3 === 1 ? 'prod' : 'dev';
    return {
      id: newId('snap'),
      accountId: v.accountId,
      volumeId: v.id,
      zone: v.zone,
      volumeSizeGiB: v.sizeGiB,
      state,
      progress: state === 'completed' ? 100 : state === 'pending' ? Math.floor(rnd() * 100) : 0,
      description: n % 7 === 0 ? '' : NAMES[n % NAMES.length]!(n),
      startTime: day(rnd),
      isPublic: rnd() < 0.1,
      sharedWith,
      tags,
    };
  });
}

/** Writes `volumes` and `snapshots` (their permissions and tags) in a few multi-row INSERTs. `now` dates the deletions. */
export async function seedVolumes(ds: DataSource, volumes: readonly SeededVolume[], snapshots: readonly SeededSnapshot[] = [], now = new Date()): Promise<void> {
  const volumeRows = volumes.map((v) => ({
    id: v.id,
    accountId: v.accountId,
    zone: v.zone,
    sizeGiB: v.sizeGiB,
    snapshotId: v.snapshotId,
    volumeType: v.volumeType,
    iops: v.iops,
    state: v.state,
    stateReasonCode: v.state === 'error' ? 'Server.InternalError' : null,
    stateReasonMessage: v.state === 'error' ? 'seeded' : null,
    createdAt: v.createdAt,
    deletedAt: v.state !== 'deleted' ? null : new Date(now.getTime() - (v.expired ? 30 * 86400_000 : 60_000)),
    clientToken: null,
    paramsHash: 'seed',
    attachInstanceId: v.attach?.instanceId ?? null,
    attachDevice: v.attach?.device ?? null,
    attachNode: v.attach ? `${v.zone}-n1` : null,
    attachState: v.attach?.state ?? null,
    attachTime: v.attach?.time ?? null,
    deleteOnTermination: v.deleteOnTermination,
    guestDevice: v.attach?.state === 'attached' ? 'vdb' : null,
    chapUser: v.attach ? v.id : null,
    chapSecretEnc: null,
  }));
  const snapshotRows = snapshots.map((s) => ({
    id: s.id,
    accountId: s.accountId,
    volumeId: s.volumeId,
    volumeSizeGiB: s.volumeSizeGiB,
    zone: s.zone,
    state: s.state,
    progress: s.progress,
    stateReasonCode: null,
    stateReasonMessage: s.state === 'error' ? 'seeded failure' : null,
    startTime: s.startTime,
    description: s.description,
    isPublic: s.isPublic,
    sourceSnapshotId: null,
  }));
  const permissions = snapshots.flatMap((s) => s.sharedWith.map((accountId) => ({ snapshotId: s.id, accountId })));
  const tags = [
    ...volumes.flatMap((v) => Object.entries(v.tags).map(([key, value]) => ({ resourceId: v.id, key, value, accountId: v.accountId, resourceType: 'volume' }))),
    ...snapshots.flatMap((s) => Object.entries(s.tags).map(([key, value]) => ({ resourceId: s.id, key, value, accountId: s.accountId, resourceType: 'snapshot' }))),
  ];
  const chunks = <T>(xs: readonly T[], n: number) => Array.from({ length: Math.ceil(xs.length / n) }, (_, k) => xs.slice(k * n, (k + 1) * n));
  await ds.transaction(async (em) => {
    for (const c of chunks(volumeRows, 1000)) await em.getRepository(VolumeEntity).insert(c);
    for (const c of chunks(snapshotRows, 1000)) await em.getRepository(SnapshotEntity).insert(c);
    for (const c of chunks(permissions, 2000)) await em.getRepository(SnapshotVolumePermissionEntity).insert(c);
    for (const c of chunks(tags, 2000)) await em.getRepository(TagEntity).insert(c);
  });
  await ds.query('ANALYZE volumes, snapshots, snapshot_volume_permissions, tags');
}
