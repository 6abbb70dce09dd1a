/**
 * Instances written straight into the CLC's database (reservations, instances, tags), for tests
 * and benchmarks that need thousands of them: launching through a zone would take minutes and
 * test nothing DescribeInstances cares about. Deterministic apart from the ids (newId).
 */
import type { InstanceState } from '@koala/contracts';
import { newId } from '@koala/ec2-query';
import type { DataSource } from 'typeorm';
import { InstanceEntity, ReservationEntity } from '../../apps/cloud-controller/src/instances/instance.entity.js';
import { TagEntity } from '../../apps/cloud-controller/src/tags/tag.entity.js';
import { prng } from '../support/prng.js';

export const STATE_CODES: Record<InstanceState, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

export interface SeededInstance {
  id: string;
  reservationId: string;
  accountId: string;
  zone: string;
  state: InstanceState;
  /** Terminated long before the retention period: never visible. */
  expired: boolean;
  instanceType: string;
  imageId: string;
  launchTime: Date;
  tags: Record<string, string>;
}

const STATES: InstanceState[] = ['running', 'running', 'running', 'running', 'pending', 'stopped', 'stopping', 'shutting-down', 'terminated'];
const TYPES = ['m1.small', 't1.micro', 'c1.medium'];
const IMAGES = ['emi-0000000000000000a', 'emi-0000000000000000b'];
/** Name tags chosen so that LIKE without escaping would match the wrong ones (`_`, `%`, `\`). */
const NAMES = [
  (n: number) => `web-${n}`,
  (n: number) => `db_${n % 10}`,
  (n: number) => `dbx${n % 10}`,
  (n: number) => `50%off-${n}`,
  (n: number) => `50xoff-${n}`,
  (n: number) => `back\\slash-${n % 10}`,
];

/**
 * `count` instances spread over `accounts` and `zones`, in reservations of 1–4 instances of one
 * account; a mix of states (a few terminated ones expired), types, images, launch days
 * (2026-01-01 … 2026-01-20) and tags (`Name` always, `env` on two thirds).
 */
export function makeInstances(opts: { count: number; accounts: readonly string[]; zones: readonly string[]; seed?: number }): SeededInstance[] {
  const rnd = prng(opts.seed ?? 42);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const out: SeededInstance[] = [];
  let n = 0;
  while (n < opts.count) {
    const accountId = pick(opts.accounts);
    const zone = pick(opts.zones);
    const reservationId = newId('r');
    const size = Math.min(1 + Math.floor(rnd() * 4), opts.count - n);
    for (let k = 0; k < size; k++, n++) {
      const state = pick(STATES);
      const tags: Record<string, string> = { Name: NAMES[n % NAMES.length]!(n) };
      if (n % 3 !== 0) tags.env = n % 3 === 1 ? 'prod' : 'dev';
      out.push({
        id: newId('i'),
        reservationId,
        accountId,
        zone,
        state,
        expired: state === 'terminated' && rnd() < 0.5,
        instanceType: pick(TYPES),
        imageId: pick(IMAGES),
        launchTime: new Date(Date.UTC(2026, 0, 1 + Math.floor(rnd() * 20), Math.floor(rnd() * 24))),
        tags,
      });
    }
  }
  return out;
}

/** Writes `instances` (their reservations and tags) in a few multi-row INSERTs. `now` dates the terminations. */
export async function seedInstances(ds: DataSource, instances: readonly SeededInstance[], now = new Date()): Promise<void> {
  const reservations = new Map<string, { id: string; accountId: string; requesterId: string; clientToken: null; paramsHash: string; createdAt: Date }>();
  for (const i of instances) {
    if (!reservations.has(i.reservationId))
      reservations.set(i.reservationId, { id: i.reservationId, accountId: i.accountId, requesterId: i.accountId, clientToken: null, paramsHash: 'seed', createdAt: i.launchTime });
  }
  const launchIndex = new Map<string, number>();
  const rows = instances.map((i) => {
    const index = launchIndex.get(i.reservationId) ?? 0;
    launchIndex.set(i.reservationId, index + 1);
    const terminatedAt = i.state !== 'terminated' ? null : new Date(now.getTime() - (i.expired ? 30 * 86400_000 : 60_000));
    return {
      id: i.id,
      reservationId: i.reservationId,
      accountId: i.accountId,
      imageId: i.imageId,
      kernelId: null,
      ramdiskId: null,
      instanceType: i.instanceType,
      state: i.state,
      stateCode: STATE_CODES[i.state],
      stateReasonCode: null,
      stateReasonMessage: null,
      stateTransitionReason: '',
      stateChangedAt: terminatedAt ?? i.launchTime,
      zone: i.zone,
      node: i.state === 'pending' ? null : `${i.zone}-n1`,
      keyName: null,
      userData: null,
      launchIndex: index,
      launchTime: i.launchTime,
      clientToken: null,
      disableApiTermination: false,
      shutdownBehavior: 'stop' as const,
      architecture: 'x86_64',
      rootDeviceName: '/dev/vda',
      rootDeviceType: 'instance-store',
      virtualizationType: 'hvm',
      platform: null,
      privateDnsName: `${i.id}.koala-1.compute.internal`,
      monitoringState: 'disabled',
      terminatedAt,
      lastSeenAt: i.state === 'running' ? now : null,
      impaired: false,
      impairedSince: null,
    };
  });
  const tags = instances.flatMap((i) => Object.entries(i.tags).map(([key, value]) => ({ resourceId: i.id, key, value, accountId: i.accountId, resourceType: 'instance' })));
  const chunks = <T>(xs: readonly T[], n: number) => Array.from({ length: Math.ceil(xs.length / n) }, (_, k) => xs.slice(k * n, (k + 1) * n));
  await ds.transaction(async (em) => {
    for (const c of chunks([...reservations.values()], 2000)) await em.getRepository(ReservationEntity).insert(c);
    for (const c of chunks(rows, 1000)) await em.getRepository(InstanceEntity).insert(c);
    for (const c of chunks(tags, 2000)) await em.getRepository(TagEntity).insert(c);
  });
  await ds.query('ANALYZE reservations, instances, tags');
}
