/**
 * In-memory fakes for the unit specs of VolumesService and BlockDevicesService: the repositories
 * (same interfaces as the real ones, with the unique indexes and a rollback of the transaction on
 * an error) and the ports (zone storage, tags, quotas, CHAP secrets, restorable snapshots).
 */
import type { ExportedTarget, ExportVolumeRequest, IscsiTarget } from '@koala/contracts';
import { capMaxResults, Ec2Error, isValidId, paginate } from '@koala/ec2-query';
import type { Logger } from '@koala/logging';
import { accessOf, allows, type Caller } from '../../persistence/access-scope.js';
import type { DescribeQuery } from '../../persistence/describe-page.js';
import type { BlockDevicePatch, BlockDeviceRow, BlockDeviceState, BlockDeviceStore, MappedVolume, OpenBlockDevice, Tx } from '../block-device.repository.js';
import type { ChapSecrets } from '../chap-credentials.js';
import type { RestorableSnapshot, RestorableSnapshots } from '../restorable-snapshots.port.js';
import type { ZoneStorageGateway } from '../storage-gateway.js';
import { DETACHED } from '../volume-states.js';
import { UniqueViolation, type AttachTarget, type VolumeMatch, type VolumePaging, type VolumeRow, type VolumesStore } from '../volumes.repository.js';
import type { VolumeQuotas } from '../volumes.service.js';
export { FakeTags } from '../../tags/testing/fake-tags.js';

/** The handle the fakes pass as a transaction (never used by them). */
export const FAKE_TX = {} as Tx;

export const silentLogger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

/** A volume row with defaults: available, detached, 8 GiB in zone `z1`. */
export function volumeRow(f: Partial<VolumeRow> & { id: string; accountId: string }): VolumeRow {
  return {
    zone: 'z1',
    sizeGiB: 8,
    snapshotId: null,
    volumeType: 'standard',
    iops: null,
    state: 'available',
    stateReasonCode: null,
    stateReasonMessage: null,
    createdAt: new Date('2026-12-01T00:00:00Z'),
    deletedAt: null,
    clientToken: null,
    paramsHash: null,
    ...DETACHED,
    ...f,
  };
}

/** Every row as stored (copies out, copies in: a caller's object is never the stored one). */
export class FakeVolumesStore implements VolumesStore {
  rows = new Map<string, VolumeRow>();
  instances = new Map<string, AttachTarget>();
  /** Transactions begun / rolled back. */
  transactions = 0;
  rollbacks = 0;

  put(...rows: VolumeRow[]): void {
    for (const r of rows) this.rows.set(r.id, { ...r });
  }

  get(id: string): VolumeRow | undefined {
    const r = this.rows.get(id);
    return r && { ...r };
  }

  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    this.transactions++;
    const saved = structuredClone(this.rows);
    try {
      return await work(FAKE_TX);
    } catch (e) {
      this.rows = saved;
      this.rollbacks++;
      throw e;
    }
  }

  async owners(_tx: Tx, ids: readonly string[]): Promise<Map<string, string>> {
    return new Map(ids.flatMap((id) => (this.rows.get(id) && this.rows.get(id)!.state !== 'deleted' ? [[id, this.rows.get(id)!.accountId] as [string, string]] : [])));
  }

  async find(id: string) {
    return this.get(id);
  }

  async byClientToken(accountId: string, clientToken: string) {
    const r = [...this.rows.values()].find((v) => v.accountId === accountId && v.clientToken === clientToken);
    return r && { ...r };
  }

  async insert(_tx: Tx, v: VolumeRow): Promise<void> {
    if (this.rows.has(v.id)) throw new UniqueViolation('volumes_pkey');
    if (v.clientToken !== null && [...this.rows.values()].some((r) => r.accountId === v.accountId && r.clientToken === v.clientToken)) throw new UniqueViolation('volumes_client_token_key');
    this.rows.set(v.id, { ...v });
  }

  async remove(_tx: Tx, id: string): Promise<void> {
    this.rows.delete(id);
  }

  async lock(_tx: Tx, id: string) {
    return this.get(id);
  }

  async lockMany(_tx: Tx, ids: readonly string[]) {
    return ids.flatMap((id) => (this.rows.has(id) ? [this.get(id)!] : []));
  }

  async update(match: VolumeMatch, patch: Partial<VolumeRow>): Promise<number> {
    const r = this.rows.get(match.id);
    if (!r || (Object.keys(match) as Array<keyof VolumeMatch>).some((k) => r[k] !== match[k])) return 0;
    const next = { ...r, ...patch };
    if (next.attachState && [...this.rows.values()].some((o) => o.id !== r.id && o.attachState && o.attachInstanceId === next.attachInstanceId && o.attachDevice === next.attachDevice)) {
      throw new UniqueViolation('volumes_attachment_key');
    }
    this.rows.set(r.id, next);
    return 1;
  }

  async updateMany(_tx: Tx, ids: readonly string[], patch: Partial<VolumeRow>): Promise<void> {
    for (const id of ids) await this.update({ id }, patch);
  }

  async deviceTaken(_tx: Tx, instanceId: string, device: string): Promise<boolean> {
    return [...this.rows.values()].some((v) => v.attachInstanceId === instanceId && v.attachDevice === device);
  }

  async lockInstance(_tx: Tx, instanceId: string) {
    return this.instance(instanceId);
  }

  async instance(instanceId: string) {
    const i = this.instances.get(instanceId);
    return i && { ...i };
  }

  async exported(zone: string) {
    return [...this.rows.values()].filter((v) => v.zone === zone && (v.attachState === 'attaching' || v.attachState === 'attached')).sort(byId);
  }

  async attachedTo(instanceIds: readonly string[]) {
    return [...this.rows.values()].filter((v) => v.attachInstanceId && instanceIds.includes(v.attachInstanceId)).map((v) => v.id);
  }

  async toSweep(stuckBefore: Date) {
    return [...this.rows.values()]
      .filter((v) => {
        if (!v.attachInstanceId) return false;
        const i = this.instances.get(v.attachInstanceId);
        return !i || i.state === 'terminated' || ((v.attachState === 'attaching' || v.attachState === 'detaching') && v.attachTime !== null && v.attachTime < stuckBefore);
      })
      .map((v) => v.id);
  }

  async describe<V>(caller: Caller, q: DescribeQuery, o: { cutoff: Date; live: boolean }, how: VolumePaging<V>) {
    const rows = [...this.rows.values()]
      .filter((v) => (v.state !== 'deleted' || (!o.live && v.deletedAt !== null && v.deletedAt > o.cutoff)) && allows(accessOf(caller, v), 'see'))
      .map((v) => ({ ...v }))
      .sort(byId);
    return fakePage(q, how, rows, { prefix: 'vol', malformed: 'InvalidVolumeID.Malformed', notFound: 'InvalidVolume.NotFound' });
  }
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** describePage's answers over rows already narrowed to the caller's (no SQL pre-selection: every filter in `keep`). */
export async function fakePage<R extends { id: string }, V>(
  q: DescribeQuery,
  how: Omit<VolumePaging<V>, 'keep'> & { keep: (rows: R[]) => Promise<V[]> | V[] },
  rows: R[],
  codes: { prefix: 'vol' | 'snap'; malformed: 'InvalidVolumeID.Malformed' | 'InvalidSnapshotID.Malformed'; notFound: 'InvalidVolume.NotFound' | 'InvalidSnapshot.NotFound' },
): Promise<{ page: V[]; nextToken?: string }> {
  const bounds = { min: how.min ?? 5, max: how.max ?? 1000 };
  const maxResults = how.capAboveMax ? capMaxResults(q.maxResults, bounds.max) : q.maxResults;
  if (q.ids.length) {
    if (maxResults !== undefined) throw Ec2Error.invalidParameterCombination(`The parameter ${how.idsParameter} cannot be used with the parameter maxResults`);
    for (const id of q.ids) if (!isValidId(codes.prefix, id)) throw Ec2Error.malformed(codes.malformed, id);
    const missing = [...new Set(q.ids)].filter((id) => !rows.some((r) => r.id === id));
    if (missing.length) throw Ec2Error.notFound(codes.notFound, missing);
    rows = rows.filter((r) => q.ids.includes(r.id));
  } else how.validate();
  return paginate(await how.keep(rows), { maxResults, nextToken: q.nextToken, ...bounds, keyOf: how.keyOf, scope: how.scope });
}

type Call = { op: string; zone: string; args: unknown };

/** The zone's SC and CC: records every request; `fail.set(op, error)` makes one kind of request throw. */
export class FakeZoneStorage implements ZoneStorageGateway {
  calls: Call[] = [];
  fail = new Map<string, unknown>();
  zoneNames = ['z1', 'z2'];

  private async call<T>(op: string, zone: string, args: unknown, answer: T): Promise<T> {
    this.calls.push({ op, zone, args });
    if (this.fail.has(op)) throw this.fail.get(op);
    return answer;
  }

  ops(): string[] {
    return this.calls.map((c) => c.op);
  }

  async zones() {
    return this.zoneNames;
  }
  createVolume(zone: string, r: { volumeId: string; sizeGiB: number; snapshotId?: string }) {
    return this.call('createVolume', zone, r, undefined);
  }
  deleteVolume(zone: string, volumeId: string) {
    return this.call('deleteVolume', zone, volumeId, undefined);
  }
  exportVolume(zone: string, r: ExportVolumeRequest): Promise<ExportedTarget> {
    return this.call('exportVolume', zone, r, { iqn: `iqn.test:${r.volumeId}`, lun: 1, portal: '127.0.0.1:3260', chapUser: r.chapUser });
  }
  storageSealKey(zone: string) {
    return this.call('storageSealKey', zone, undefined, undefined as string | undefined);
  }
  nodeSealKey(zone: string, node: string) {
    return this.call('nodeSealKey', zone, node, undefined as string | undefined);
  }
  unexportVolume(zone: string, volumeId: string) {
    return this.call('unexportVolume', zone, volumeId, undefined);
  }
  createSnapshot(zone: string, r: { snapshotId: string; volumeId: string }) {
    return this.call('createSnapshot', zone, r, undefined);
  }
  deleteSnapshot(zone: string, snapshotId: string) {
    return this.call('deleteSnapshot', zone, snapshotId, undefined);
  }
  copySnapshot(zone: string, r: { sourceSnapshotId: string; snapshotId: string }) {
    return this.call('copySnapshot', zone, r, undefined);
  }
  attachVolume(zone: string, r: { instanceId: string; node: string; volumeId: string; device: string; target: IscsiTarget }) {
    return this.call('attachVolume', zone, r, { guestDevice: 'vdb' });
  }
  detachVolume(zone: string, r: { instanceId: string; node: string; volumeId: string; force?: boolean }) {
    return this.call('detachVolume', zone, r, undefined);
  }
}

/** Quotas that admit everything unless `refuse` is set; records the requests. */
export class FakeQuotas implements VolumeQuotas {
  requests: unknown[] = [];
  refuse?: Ec2Error;
  async enforce(_tx: Tx, _caller: Caller, request: unknown): Promise<void> {
    this.requests.push(request);
    if (this.refuse) throw this.refuse;
  }
}

export const fakeChap: ChapSecrets = {
  generate: () => 'secret-0123456789abcdef',
  seal: (s) => `sealed:${s}`,
  open: (s) => s.replace(/^sealed:/, ''),
};

/** Snapshots restorable by account: `snapshots` (id → snapshot and the accounts that may restore it). */
export class FakeRestorableSnapshots implements RestorableSnapshots {
  snapshots = new Map<string, { snapshot: RestorableSnapshot; accounts: string[] }>();
  async restorable(caller: Caller, id: string): Promise<RestorableSnapshot> {
    if (!isValidId('snap', id)) throw Ec2Error.malformed('InvalidSnapshotID.Malformed', id);
    const s = this.snapshots.get(id);
    if (!s || (!caller.isAdmin && !s.accounts.includes(caller.id))) throw Ec2Error.notFound('InvalidSnapshot.NotFound', id);
    return s.snapshot;
  }
}

/** The block-device mapping rows, their volumes (a FakeVolumesStore) and instances' states. */
export class FakeBlockDeviceStore implements BlockDeviceStore {
  rows: BlockDeviceRow[] = [];
  instanceStates = new Map<string, string>();
  constructor(readonly volumes: FakeVolumesStore) {}

  row(instanceId: string, deviceName: string): BlockDeviceRow | undefined {
    return this.rows.find((r) => r.instanceId === instanceId && r.deviceName === deviceName);
  }

  async insert(_tx: Tx, rows: readonly BlockDeviceRow[]): Promise<void> {
    this.rows.push(...rows.map((r) => ({ ...r })));
  }

  async open(instanceIds?: readonly string[]): Promise<OpenBlockDevice[]> {
    return this.rows
      .filter((r) => !instanceIds || instanceIds.includes(r.instanceId))
      .map((r) => ({ ...r, instanceState: this.instanceStates.get(r.instanceId) ?? null }))
      .filter(
        (r) =>
          ['pending', 'creating', 'attaching'].includes(r.state) ||
          (r.state === 'failed' && r.volumeId !== null && r.deleteOnTermination && (r.instanceState === null || r.instanceState === 'terminated')),
      );
  }

  async move(key: { instanceId: string; deviceName: string }, from: BlockDeviceState, patch: BlockDevicePatch, claimedBefore?: Date): Promise<boolean> {
    const r = this.row(key.instanceId, key.deviceName);
    if (!r || r.state !== from) return false;
    if (claimedBefore && r.claimedAt && r.claimedAt >= claimedBefore) return false;
    if (patch.state) r.state = patch.state;
    if (patch.volumeId !== undefined) r.volumeId = patch.volumeId;
    if (patch.reason !== undefined) {
      r.reasonCode = patch.reason?.code ?? null;
      r.reasonMessage = patch.reason?.message ?? null;
    }
    if (patch.claimedAt !== undefined) r.claimedAt = patch.claimedAt;
    return true;
  }

  async setDeleteOnTermination(_tx: Tx, instanceId: string, deviceName: string, value: boolean): Promise<boolean> {
    const r = this.row(instanceId, deviceName);
    if (!r || r.state === 'released') return false;
    r.deleteOnTermination = value;
    return true;
  }

  async setVolumeDeleteOnTermination(_tx: Tx, instanceId: string, deviceName: string, value: boolean): Promise<boolean> {
    const v = [...this.volumes.rows.values()].find((x) => x.attachInstanceId === instanceId && x.attachDevice === deviceName && x.attachState);
    if (!v) return false;
    v.deleteOnTermination = value;
    return true;
  }

  async volume(id: string): Promise<MappedVolume | undefined> {
    return this.volumes.get(id);
  }

  async volumeByClientToken(accountId: string, clientToken: string): Promise<string | undefined> {
    return (await this.volumes.byClientToken(accountId, clientToken))?.id;
  }

  async instanceState(instanceId: string): Promise<string | undefined> {
    return this.instanceStates.get(instanceId);
  }
}
