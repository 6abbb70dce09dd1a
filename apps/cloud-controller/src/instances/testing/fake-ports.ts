/**
 * Fakes of what the instance services use of other folders (instance-ports.ts) and of the zones
 * (ClusterGateway), recording what they were asked. Each answers the simplest thing that is
 * right; a spec changes a field to drive another path.
 */
import type { InstanceAction, NodeDomains, PlaceInstancesResponse } from '@koala/contracts';
import { Ec2Error } from '@koala/ec2-query';
import type { Logger } from '@koala/logging';
import type { ImageLaunchPort } from '../../images/image-launch.port.js';
import type { LaunchNetwork } from '../../network/network.service.js';
import type { SecurityGroupEntity } from '../../security-groups/security-group.entity.js';
import type { ClusterGateway } from '../cluster-gateway.js';
import type { BlockDevicesPort, InstanceNetworkPort, InstanceQuotasPort, InstanceTagsPort, LaunchGroupsPort, NetworkChangesPort } from '../instance-ports.js';

export const IMAGE = 'emi-0000000000000abcd';

/** A logger that keeps nothing. */
export const quietLogger = (): Logger => {
  const l = { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, fatal: () => {}, child: () => l };
  return l as unknown as Logger;
};

export class FakeCluster implements ClusterGateway {
  /** The zones answering. */
  zonesUp = ['zone-a'];
  /** How many instances of a request the zone places (the rest: no capacity). */
  capacity = Number.POSITIVE_INFINITY;
  placeError?: Error;
  actionError?: Error;
  domainsOf = new Map<string, NodeDomains[]>();
  readonly places: Array<{ zone: string; reservationId: string; minCount: number; instanceIds: string[] }> = [];
  readonly actions: Array<{ zone: string; instanceId: string; node: string; action: InstanceAction; force?: boolean }> = [];

  async zones() {
    return this.zonesUp.map((zone) => ({ zone, state: 'available' as const }));
  }
  async nodes(zone: string) {
    if (!this.zonesUp.includes(zone)) throw new Error(`zone ${zone} does not answer`);
    return [];
  }
  async domains(zone: string) {
    const d = this.domainsOf.get(zone);
    if (!d) throw new Error(`zone ${zone} does not answer`);
    return d;
  }
  async place(zone: string, request: Parameters<ClusterGateway['place']>[1]): Promise<PlaceInstancesResponse> {
    this.places.push({ zone, reservationId: request.reservationId, minCount: request.minCount, instanceIds: request.instances.map((i) => i.instanceId) });
    if (this.placeError) throw this.placeError;
    return { placements: request.instances.slice(0, this.capacity).map((i) => ({ instanceId: i.instanceId, node: 'n1' })) };
  }
  async action(zone: string, request: { instanceId: string; node: string; action: InstanceAction; force?: boolean }) {
    this.actions.push({ zone, ...request });
    if (this.actionError) throw this.actionError;
  }
  async consoleOutput() {
    return { output: 'Ym9vdA==', timestamp: '2026-12-01T00:00:05.000Z' };
  }
}

/** One launchable hvm image, IMAGE; any other id is NotFound. */
export class FakeImages implements ImageLaunchPort {
  async launchSpec(_caller: { accountId: string; isAdmin: boolean }, imageId: string) {
    if (imageId !== IMAGE) throw Ec2Error.notFound('InvalidAMIID.NotFound', imageId);
    return {
      spec: { virtualizationType: 'hvm' as const, root: { imageId, sha256: 'a'.repeat(64), sizeBytes: 1024, format: 'qcow2' as const, url: 'http://127.0.0.1:1/blob' } },
      architecture: 'x86_64',
      rootDeviceName: '/dev/vda',
    };
  }
}

/** The account's `default` group only. */
export class FakeGroups implements LaunchGroupsPort {
  async resolveGroup(_tx: unknown, caller: { id: string }, ref: { id?: string; name?: string }) {
    if (ref.name === 'default' || ref.id === `sg-${caller.id}`) return { id: `sg-${caller.id}`, name: 'default' } as SecurityGroupEntity;
    throw Ec2Error.notFound('InvalidGroup.NotFound', ref.name ?? ref.id ?? '');
  }
  async ensureDefaultGroup(accountId: string) {
    return `sg-${accountId}`;
  }
}

export class FakeTags implements InstanceTagsPort {
  readonly applied: string[] = [];
  readonly deleted: string[] = [];
  checkTagSpecifications() {}
  async applyTagSpecifications(_caller: unknown, _type: string, resourceId: string) {
    this.applied.push(resourceId);
    return [];
  }
  async tagsOf(ids: readonly string[]) {
    return new Map(ids.map((id) => [id, []]));
  }
  async deleteAllFor(resourceId: string) {
    this.deleted.push(resourceId);
  }
}

export class FakeBlockDevices implements BlockDevicesPort {
  readonly stepped: string[][] = [];
  async validate() {}
  async record() {}
  async step(ids?: readonly string[]) {
    this.stepped.push([...(ids ?? [])]);
    return 0;
  }
  async setDeleteOnTermination() {}
}

/** One address per instance from 10.0.0.0/24; `release` answers the instances' zone. */
export class FakeNetwork implements InstanceNetworkPort {
  readonly released: string[] = [];
  private next = 10;
  zoneOfSubnet(subnetId: string) {
    return subnetId.replace(/^subnet-/, '');
  }
  checkRequestedIp() {
    return {} as ReturnType<InstanceNetworkPort['checkRequestedIp']>;
  }
  wantsPublicIp(requested: boolean | undefined) {
    return requested ?? false;
  }
  launchMetadataOptions() {
    return { httpTokens: 'optional' as const, httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' as const };
  }
  async allocateForLaunch(_tx: unknown, _zone: string, instances: ReadonlyArray<{ id: string }>) {
    return new Map(
      instances.map((i): [string, LaunchNetwork] => {
        const ip = `10.0.0.${this.next++}`;
        return [i.id, { interfaceId: `eni-${i.id.slice(2)}`, mac: '02:00:00:00:00:01', privateIp: ip, privateDnsName: `ip-${ip.replaceAll('.', '-')}.internal` }];
      }),
    );
  }
  launchSpec() {
    return {} as ReturnType<InstanceNetworkPort['launchSpec']>;
  }
  async release(_tx: unknown, ids: readonly string[]) {
    this.released.push(...ids);
    return ids.length ? ['zone-a'] : [];
  }
  async instanceNetworks() {
    return new Map();
  }
}

export class FakePublisher implements NetworkChangesPort {
  readonly zones: string[] = [];
  changed(zones: Iterable<string>) {
    this.zones.push(...zones);
  }
}

/** At most `limit` live instances per account (the admin: no limit), as the real rule answers. */
export class FakeQuotas implements InstanceQuotasPort {
  limit = Number.POSITIVE_INFINITY;
  constructor(private readonly live: (accountId: string) => number) {}
  async admitInstances(_tx: unknown, caller: { id: string; isAdmin: boolean }, want: { min: number; max: number }) {
    if (caller.isAdmin) return want.max;
    const room = this.limit - this.live(caller.id);
    if (room < want.min) throw new Ec2Error('InstanceLimitExceeded', `You have requested more instances (${want.min}) than your current instance limit of ${this.limit} allows.`);
    return Math.min(want.max, room);
  }
}
