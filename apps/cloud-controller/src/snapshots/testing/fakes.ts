/**
 * In-memory fakes for the unit spec of SnapshotsService: the repository (same interface as the
 * real one, rolled back on an error) and the ports (volumes, the zone's SC, image usage, tags,
 * quotas).
 */
import { capMaxResults, Ec2Error, paginate } from '@koala/ec2-query';
import type { Logger } from '@koala/logging';
import { accessOf, allows, type Caller } from '../../persistence/access-scope.js';
import type { SnapshotUsage } from '../snapshot-usage.port.js';
import type { SnapshotStorage, SnapshotVolume, SnapshotVolumes } from '../snapshot-volumes.port.js';
import type { CallerSnapshot, DescribeSnapshotsQuery, SnapshotPaging, SnapshotRow, SnapshotsStore, Tx } from '../snapshots.repository.js';
import type { SnapshotQuotas } from '../snapshots.service.js';
export { FakeTags } from '../../tags/testing/fake-tags.js';

export const FAKE_TX = {} as Tx;

export const silentLogger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

/** A snapshot row with defaults: completed, of an 8 GiB volume in zone `z1`, private. */
export function snapshotRow(f: Partial<SnapshotRow> & { id: string; accountId: string }): SnapshotRow {
  return {
    volumeId: 'vol-0000000000000000a',
    volumeSizeGiB: 8,
    zone: 'z1',
    state: 'completed',
    progress: 100,
    stateReasonCode: null,
    stateReasonMessage: null,
    startTime: new Date('2026-12-01T00:00:00Z'),
    description: '',
    isPublic: false,
    sourceSnapshotId: null,
    ...f,
  };
}

export class FakeSnapshotsStore implements SnapshotsStore {
  rows = new Map<string, SnapshotRow>();
  /** createVolumePermission: snapshot id → accounts. */
  grants = new Map<string, Set<string>>();

  put(...rows: SnapshotRow[]): void {
    for (const r of rows) this.rows.set(r.id, { ...r });
  }

  get(id: string): SnapshotRow | undefined {
    const r = this.rows.get(id);
    return r && { ...r };
  }

  granted(id: string): string[] {
    return [...(this.grants.get(id) ?? [])].sort();
  }

  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const saved = { rows: structuredClone(this.rows), grants: structuredClone(this.grants) };
    try {
      return await work(FAKE_TX);
    } catch (e) {
      Object.assign(this, saved);
      throw e;
    }
  }

  async owners(_tx: Tx, ids: readonly string[]) {
    return new Map(ids.flatMap((id) => (this.rows.has(id) ? [[id, this.rows.get(id)!.accountId] as [string, string]] : [])));
  }

  async find(id: string, callerId?: string): Promise<CallerSnapshot | undefined> {
    const r = this.get(id);
    return r && { ...r, grantedToCaller: callerId !== undefined && this.granted(id).includes(callerId) };
  }

  async lock(_tx: Tx, id: string, callerId?: string) {
    return this.find(id, callerId);
  }

  async permissions(ids: readonly string[]) {
    return new Map(ids.map((id) => [id, this.granted(id)]));
  }

  async insert(_tx: Tx, s: SnapshotRow): Promise<void> {
    if (this.rows.has(s.id)) throw new Error('duplicate snapshot id');
    this.rows.set(s.id, { ...s });
  }

  async remove(_tx: Tx, id: string): Promise<void> {
    this.rows.delete(id);
    this.grants.delete(id);
  }

  async update(match: { id: string; state?: SnapshotRow['state'] }, patch: Partial<SnapshotRow>): Promise<number> {
    const r = this.rows.get(match.id);
    if (!r || (match.state !== undefined && r.state !== match.state)) return 0;
    this.rows.set(r.id, { ...r, ...patch });
    return 1;
  }

  async grant(_tx: Tx, id: string, accounts: readonly string[]): Promise<void> {
    const set = this.grants.get(id) ?? new Set<string>();
    for (const a of accounts) set.add(a);
    this.grants.set(id, set);
  }

  async revoke(_tx: Tx, id: string, accounts: readonly string[]): Promise<void> {
    for (const a of accounts) this.grants.get(id)?.delete(a);
  }

  async revokeAll(_tx: Tx, id: string): Promise<void> {
    this.grants.delete(id);
  }

  /** describePage's answers over the snapshots the caller may see (no SQL pre-selection: the service's `keep` decides). */
  async describe<V>(caller: Caller, q: DescribeSnapshotsQuery, how: SnapshotPaging<V>) {
    const rows = [...this.rows.values()]
      .filter((s) => allows(accessOf(caller, { ...s, grantedToCaller: this.granted(s.id).includes(caller.id) }), 'see'))
      .map((s) => ({ ...s }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const bounds = { min: how.min ?? 5, max: how.max ?? 1000 };
    const maxResults = how.capAboveMax ? capMaxResults(q.maxResults, bounds.max) : q.maxResults;
    let selected = rows;
    if (q.ids.length) {
      if (maxResults !== undefined) throw Ec2Error.invalidParameterCombination(`The parameter ${how.idsParameter} cannot be used with the parameter maxResults`);
      const missing = [...new Set(q.ids)].filter((id) => !rows.some((r) => r.id === id));
      if (missing.length) throw Ec2Error.notFound('InvalidSnapshot.NotFound', missing);
      selected = rows.filter((r) => q.ids.includes(r.id));
    } else how.validate();
    return paginate(await how.keep(selected), { maxResults, nextToken: q.nextToken, ...bounds, keyOf: how.keyOf, scope: how.scope });
  }
}

/** Volumes by id. */
export class FakeSnapshotVolumes implements SnapshotVolumes {
  volumes = new Map<string, SnapshotVolume>();
  async find(id: string) {
    return this.volumes.get(id);
  }
}

/** The SC: records requests; `fail.set(op, error)` makes one kind of request throw. */
export class FakeSnapshotStorage implements SnapshotStorage {
  calls: Array<{ op: string; zone: string; args: unknown }> = [];
  fail = new Map<string, unknown>();
  private async call(op: string, zone: string, args: unknown): Promise<void> {
    this.calls.push({ op, zone, args });
    if (this.fail.has(op)) throw this.fail.get(op);
  }
  ops(): string[] {
    return this.calls.map((c) => c.op);
  }
  createSnapshot(zone: string, r: { snapshotId: string; volumeId: string }) {
    return this.call('createSnapshot', zone, r);
  }
  copySnapshot(zone: string, r: { sourceSnapshotId: string; snapshotId: string }) {
    return this.call('copySnapshot', zone, r);
  }
  deleteSnapshot(zone: string, snapshotId: string) {
    return this.call('deleteSnapshot', zone, snapshotId);
  }
}

/** Images using snapshots: snapshot id → image ids. */
export class FakeSnapshotUsage implements SnapshotUsage {
  using = new Map<string, string[]>();
  async imagesUsing(snapshotId: string) {
    return this.using.get(snapshotId) ?? [];
  }
}

export class FakeQuotas implements SnapshotQuotas {
  requests: unknown[] = [];
  refuse?: Ec2Error;
  async enforce(_tx: Tx, _caller: Caller, request: unknown): Promise<void> {
    this.requests.push(request);
    if (this.refuse) throw this.refuse;
  }
}
