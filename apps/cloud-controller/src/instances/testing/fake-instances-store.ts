/**
 * In-memory InstancesStore for the instance services' specs: rows in maps, a transaction that
 * restores them when its work throws, visibility by the one access rule (accessOf). Describe
 * pages are every matching row at once (paging itself is describePage's, tested on PostgreSQL).
 */
import { Ec2Error, isValidId } from '@koala/ec2-query';
import { accessOf, allows, type Caller } from '../../persistence/access-scope.js';
import type { DescribeQuery } from '../../persistence/describe-page.js';
import { InstanceEntity, type InstanceSecurityGroupEntity, type ReservationEntity } from '../instance.entity.js';
import type { StateFields } from '../instance-states.js';
import { ClientTokenTaken, type AttachedVolume, type GroupLink, type InstancePaging, type InstancesStore, type Tx } from '../instances.repository.js';

const copy = (i: InstanceEntity): InstanceEntity => Object.assign(new InstanceEntity(), i);
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export class FakeInstancesStore implements InstancesStore {
  instances = new Map<string, InstanceEntity>();
  reservationRows = new Map<string, ReservationEntity>();
  links: InstanceSecurityGroupEntity[] = [];
  /** `accountId/keyName` → public key. */
  keyPairs = new Map<string, string>();
  groupNames = new Map<string, string>();
  volumes: AttachedVolume[] = [];
  /** Transactions begun, and those that threw (rolled back). */
  transactions = 0;
  rollbacks = 0;

  readonly pool = { fake: 'pool' } as unknown as Tx;

  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    this.transactions++;
    const saved = { instances: new Map([...this.instances].map(([k, v]) => [k, copy(v)])), reservationRows: new Map(this.reservationRows), links: [...this.links] };
    try {
      return await work({ fake: 'tx' } as unknown as Tx);
    } catch (e) {
      this.rollbacks++;
      Object.assign(this, saved);
      throw e;
    }
  }

  /** Puts an instance as a test wants it (defaults: a running m1.small of `accountId` on node n1), and its reservation. */
  put(over: Partial<InstanceEntity> & { id: string; accountId: string }): InstanceEntity {
    const at = new Date('2026-12-01T00:00:00Z');
    const i = Object.assign(new InstanceEntity(), {
      reservationId: 'r-00000001',
      imageId: 'emi-00000001',
      kernelId: null,
      ramdiskId: null,
      instanceType: 'm1.small',
      state: 'running',
      stateCode: 16,
      stateReasonCode: null,
      stateReasonMessage: null,
      stateTransitionReason: '',
      stateChangedAt: at,
      zone: 'zone-a',
      node: 'n1',
      keyName: null,
      userData: null,
      launchIndex: 0,
      launchTime: at,
      clientToken: null,
      disableApiTermination: false,
      shutdownBehavior: 'stop',
      architecture: 'x86_64',
      rootDeviceName: '/dev/vda',
      rootDeviceType: 'instance-store',
      virtualizationType: 'hvm',
      platform: null,
      privateDnsName: '',
      monitoringState: 'disabled',
      terminatedAt: null,
      lastSeenAt: null,
      impaired: false,
      impairedSince: null,
      metadataHttpTokens: 'optional',
      metadataHopLimit: 1,
      metadataHttpEndpoint: 'enabled',
      associatePublicIp: false,
      ...over,
    } satisfies Omit<InstanceEntity, never>);
    this.instances.set(i.id, i);
    if (!this.reservationRows.has(i.reservationId)) {
      this.reservationRows.set(i.reservationId, { id: i.reservationId, accountId: i.accountId, requesterId: i.accountId, clientToken: null, paramsHash: '', createdAt: at });
    }
    return i;
  }

  get(id: string): InstanceEntity | undefined {
    return this.instances.get(id);
  }

  async publicKeyOf(accountId: string, keyName: string) {
    return this.keyPairs.get(`${accountId}/${keyName}`);
  }

  async reservationByClientToken(accountId: string, clientToken: string) {
    return [...this.reservationRows.values()].find((r) => r.accountId === accountId && r.clientToken === clientToken);
  }

  async insertReservation(_tx: Tx, r: ReservationEntity) {
    if (r.clientToken !== null && [...this.reservationRows.values()].some((o) => o.accountId === r.accountId && o.clientToken === r.clientToken)) throw new ClientTokenTaken();
    this.reservationRows.set(r.id, { ...r });
  }

  async insertInstances(_tx: Tx, instances: readonly InstanceEntity[]) {
    for (const i of instances) this.instances.set(i.id, copy(i));
  }

  async insertGroupLinks(_tx: Tx, links: readonly InstanceSecurityGroupEntity[]) {
    this.links.push(...links.map((l) => ({ ...l })));
  }

  async setNodes(_tx: Tx, placed: ReadonlyMap<string, string>) {
    for (const [id, node] of placed) {
      const i = this.instances.get(id);
      if (i && i.node === null) i.node = node;
    }
  }

  async deleteInstances(_tx: Tx, ids: readonly string[]) {
    for (const id of ids) this.instances.delete(id);
    this.links = this.links.filter((l) => !ids.includes(l.instanceId));
  }

  /** Its instances with it (ON DELETE CASCADE). */
  async deleteReservation(tx: Tx, id: string) {
    this.reservationRows.delete(id);
    await this.deleteInstances(
      tx,
      [...this.instances.values()].filter((i) => i.reservationId === id).map((i) => i.id),
    );
  }

  async deleteEmptyReservations() {
    for (const id of this.reservationRows.keys()) if (![...this.instances.values()].some((i) => i.reservationId === id)) this.reservationRows.delete(id);
  }

  async reservations(ids: readonly string[]) {
    return ids.flatMap((id) => (this.reservationRows.has(id) ? [{ ...this.reservationRows.get(id)! }] : []));
  }

  async instancesOf(reservationIds: readonly string[]) {
    return [...this.instances.values()]
      .filter((i) => reservationIds.includes(i.reservationId))
      .sort((a, b) => a.launchIndex - b.launchIndex)
      .map(copy);
  }

  async groupLinks(instanceIds: readonly string[]): Promise<GroupLink[]> {
    return [...this.links]
      .sort((a, b) => a.position - b.position)
      .filter((l) => instanceIds.includes(l.instanceId))
      .map((l) => ({ instanceId: l.instanceId, groupId: l.groupId, groupName: this.groupNames.get(l.groupId) ?? '' }));
  }

  async attachedVolumes(instanceIds: readonly string[]) {
    return this.volumes.filter((v) => instanceIds.includes(v.instanceId));
  }

  async page<V>(caller: Caller, cutoff: Date, q: DescribeQuery, how: InstancePaging<V>) {
    const retained = [...this.instances.values()].filter((i) => i.state !== 'terminated' || (i.terminatedAt?.getTime() ?? 0) > cutoff.getTime());
    const visible = retained.filter((i) => allows(accessOf(caller, i), 'see')).sort(byId);
    if (q.ids.length) {
      for (const id of q.ids) if (!isValidId('i', id)) throw Ec2Error.malformed('InvalidInstanceID.Malformed', id);
      const missing = [...new Set(q.ids)].filter((id) => !visible.some((i) => i.id === id));
      if (missing.length) throw Ec2Error.notFound('InvalidInstanceID.NotFound', missing);
      return { page: await how.keep(visible.filter((i) => q.ids.includes(i.id)).map(copy)) };
    }
    how.validate();
    return { page: await how.keep(visible.filter((i) => !how.runningOnly || i.state === 'running').map(copy)) };
  }

  async lockByIds(_tx: Tx, ids: readonly string[]) {
    return [...this.instances.values()]
      .filter((i) => ids.includes(i.id))
      .sort(byId)
      .map(copy);
  }

  async lockOne(_tx: Tx, id: string) {
    const i = this.instances.get(id);
    return i && copy(i);
  }

  async update(_tx: Tx, ids: readonly string[], patch: Partial<InstanceEntity>) {
    for (const id of ids) {
      const i = this.instances.get(id);
      if (i) Object.assign(i, patch);
    }
  }

  /** Statements writeStates ran (one per call), and the rows each wrote. */
  stateWrites: string[][] = [];

  async writeStates(_tx: Tx, rows: ReadonlyArray<{ id: string } & StateFields>) {
    this.stateWrites.push(rows.map((r) => r.id));
    for (const r of rows) {
      const i = this.instances.get(r.id);
      const { id: _id, ...fields } = r;
      if (i) Object.assign(i, fields);
    }
  }

  async zones() {
    return [...new Set([...this.instances.values()].map((i) => i.zone))];
  }

  async liveIn(zone: string) {
    return [...this.instances.values()].filter((i) => i.zone === zone && i.state !== 'terminated').map(copy);
  }

  async setImpaired(id: string, impaired: boolean, now: Date) {
    const i = this.instances.get(id);
    if (i && i.state !== 'terminated') Object.assign(i, { impaired, impairedSince: impaired ? now : null });
  }

  async setLastSeen(ids: readonly string[], now: Date) {
    for (const id of ids) {
      const i = this.instances.get(id);
      if (i) i.lastSeenAt = now;
    }
  }

  async terminatedBefore(_tx: Tx, cutoff: Date) {
    return [...this.instances.values()].filter((i) => i.state === 'terminated' && i.terminatedAt !== null && i.terminatedAt < cutoff).map((i) => i.id);
  }
}
