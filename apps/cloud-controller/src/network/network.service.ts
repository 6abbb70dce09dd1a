import { Inject, Injectable } from '@nestjs/common';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import type { InstanceMetadataOptions, InstanceNetworkSpec, ZoneNetworkState } from '@koala/contracts';
import { Ec2Error, isValidId, newId } from '@koala/ec2-query';
import { CLOCK, type Clock } from '@koala/runtime';
import { firstFree, ipToInt, poolRange, type PoolRange } from './address-pool.js';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import { defaultSubnetId, defaultVpcId, instanceMac, nextPrivateIp, nextPrivateIps, privateDnsName, publicDnsName, zoneSubnet, type Subnet } from './addressing.js';
import { buildZoneNetworkState, stateDigest } from './network-state.js';
import type { MetadataOptionsInput } from './network-params.js';
import { NETWORK_STORE, type InterfaceRow, type NetworkStore, type Tx } from './network.repository.js';
import { ZONE_NODES, type ZoneNodesPort } from './zone-nodes.port.js';

/** What a launch got: its interface and, unless declined, a public address. */
export interface LaunchNetwork {
  interfaceId: string;
  mac: string;
  privateIp: string;
  privateDnsName: string;
  publicIp?: string;
}

/** An instance's interface as DescribeInstances shows it. */
export interface InstanceNetworkView {
  interfaceId: string;
  attachmentId: string;
  attachTime: Date;
  mac: string;
  privateIp: string;
  privateDnsName: string;
  subnetId: string;
  vpcId: string;
  publicIp?: string;
  publicDnsName?: string;
  ipOwnerId?: string;
  associationId?: string;
  allocationId?: string;
}

/** Node names as KOALA_NODE_NAME allows them; anything else a node claims is ignored. */
const NODE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const DEFAULT_METADATA_OPTIONS: InstanceMetadataOptions = { httpTokens: 'optional', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' };

/**
 * Guest networking rules: private addresses and MACs (per zone, under the zone's lock, unique by
 * constraint), public addresses at launch (the elastic pool, under its lock), their release at
 * termination, metadata options, and the zone's desired state with a version that grows
 * whenever what it says changes.
 */
@Injectable()
export class NetworkService {
  private readonly pool: PoolRange;

  constructor(
    @Inject(NETWORK_STORE) private readonly repo: NetworkStore,
    @Inject(KOALA_CONFIG) private readonly config: KoalaConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(ZONE_NODES) private readonly zoneNodes: ZoneNodesPort,
  ) {
    this.pool = poolRange(config.publicIpRange);
  }

  /** The zone's subnet; a zone KOALA_ZONE_SUBNETS does not cover cannot host instances. */
  subnet(zone: string): Subnet {
    const s = zoneSubnet(this.config.zoneSubnets, zone);
    if (!s) throw new Ec2Error('InvalidParameterValue', `The availability zone '${zone}' has no subnet configured (KOALA_ZONE_SUBNETS).`);
    return s;
  }

  /**
   * The zone's subnet, and a requested private address checked against it: one the subnet can
   * hand out (not the network, broadcast or router address), else `InvalidParameterValue`.
   */
  checkRequestedIp(zone: string, ip: string | undefined): Subnet {
    const s = this.subnet(zone);
    if (ip === undefined) return s;
    const n = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(ip) && ip.split('.').every((o) => Number(o) <= 255 && String(Number(o)) === o) ? ipToInt(ip) : undefined;
    if (n === undefined) throw Ec2Error.invalidParameterValue('PrivateIpAddress', ip.slice(0, 64), 'It must be an IPv4 address.');
    if (n < s.network + 2 || n >= s.broadcast) {
      throw new Ec2Error('InvalidParameterValue', `Address ${ip} does not fall within the subnet's address range (${s.cidr}, first two and last addresses reserved).`);
    }
    return s;
  }

  /** The zone (of `zones`) whose default subnet is `subnetId`; else `InvalidSubnetID.NotFound`. */
  zoneOfSubnet(subnetId: string, zones: readonly string[]): string {
    const zone = zones.find((z) => zoneSubnet(this.config.zoneSubnets, z) && defaultSubnetId(this.config.region, z) === subnetId);
    if (!zone) throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${subnetId.slice(0, 64)}' does not exist`);
    return zone;
  }

  /** Whether a launch gets a public address: the request's AssociatePublicIpAddress, else KOALA_ASSOCIATE_PUBLIC_IP. */
  wantsPublicIp(requested: boolean | undefined): boolean {
    return requested ?? this.config.associatePublicIp;
  }

  /** MetadataOptions of a launch: EC2's defaults for what is not given. */
  launchMetadataOptions(input: MetadataOptionsInput): InstanceMetadataOptions {
    return {
      httpTokens: input.httpTokens ?? DEFAULT_METADATA_OPTIONS.httpTokens,
      httpPutResponseHopLimit: input.httpPutResponseHopLimit ?? DEFAULT_METADATA_OPTIONS.httpPutResponseHopLimit,
      httpEndpoint: input.httpEndpoint ?? DEFAULT_METADATA_OPTIONS.httpEndpoint,
    };
  }

  /**
   * In the launch transaction `tx`: an interface per instance (next free private IP, MAC from
   * the id) and a public address each when `publicIp`. A full subnet or pool fails the whole
   * launch (the transaction rolls back: nothing is half-written).
   * The zone's lock is held from here to the commit and serialises the zone's launches: call
   * this last in the transaction. Under it: one read and one write (two more for public
   * addresses), no other work.
   */
  async allocateForLaunch(tx: Tx, zone: string, instances: ReadonlyArray<{ id: string; accountId: string }>, publicIp: boolean, now: Date, requestedIp?: string): Promise<Map<string, LaunchNetwork>> {
    const subnet = this.subnet(zone);
    await this.repo.lockZone(tx, zone);
    const { ips: used, macs } = await this.repo.usedAddresses(tx, zone);
    if (requestedIp !== undefined && used.includes(requestedIp)) throw new Ec2Error('InvalidIPAddress.InUse', `Address ${requestedIp} is in use.`);
    const ips = requestedIp !== undefined ? [requestedIp] : nextPrivateIps(subnet, used, instances.length); // one instance when requested
    if (ips.length < instances.length)
      throw new Ec2Error('InsufficientFreeAddressesInSubnet', `The subnet ${subnet.cidr} of zone ${zone} has no free private IP addresses left for ${instances.length} instance(s).`);
    const rows: InterfaceRow[] = [];
    const out = new Map<string, LaunchNetwork>();
    for (const [n, i] of instances.entries()) {
      const ip = ips[n]!;
      const mac = instanceMac(i.id, macs);
      macs.add(mac);
      const row = { id: newId('eni'), instanceId: i.id, attachmentId: newId('eni-attach'), zone, mac, privateIp: ip, createdAt: now };
      rows.push(row);
      out.set(i.id, { interfaceId: row.id, mac, privateIp: ip, privateDnsName: privateDnsName(ip, this.config.dnsSuffix) });
    }
    await this.repo.insertInterfaces(tx, rows, new Map([...out].map(([id, n]) => [id, n.privateDnsName])));
    if (publicIp) {
      await this.repo.lockPublicPool(tx);
      const taken = await this.repo.usedPublicIps(tx);
      const launch = [];
      for (const i of instances) {
        const ip = firstFree(this.pool, taken);
        if (!ip)
          throw new Ec2Error(
            'InsufficientAddressCapacity',
            `The public address pool has no free address for ${instances.length} instance(s); launch with AssociatePublicIpAddress=false or release addresses.`,
          );
        taken.push(ip);
        const n = out.get(i.id)!;
        n.publicIp = ip;
        launch.push({ allocationId: newId('eipalloc'), accountId: i.accountId, publicIp: ip, instanceId: i.id, privateIp: n.privateIp, createdAt: now });
      }
      await this.repo.insertLaunchAddresses(tx, launch);
    }
    return out;
  }

  /** InstanceSpec.network of a launch. */
  launchSpec(zone: string, n: LaunchNetwork, groups: ReadonlyArray<{ groupId: string; groupName: string }>): InstanceNetworkSpec {
    return {
      mac: n.mac,
      privateIp: n.privateIp,
      subnet: this.subnet(zone).cidr,
      privateDnsName: n.privateDnsName,
      ...(n.publicIp ? { publicIp: n.publicIp } : {}),
      groups: groups.map((g) => ({ groupId: g.groupId, name: g.groupName })),
    };
  }

  /** In the transaction that terminates (or deletes) the instances: their addresses are free again. Returns the zones touched. */
  release(tx: Tx, instanceIds: readonly string[]): Promise<string[]> {
    return this.repo.release(tx, instanceIds);
  }

  /** The network of instances as DescribeInstances shows it, by instance id (terminated ones have none). */
  async instanceNetworks(instanceIds: readonly string[], tx: Tx = this.repo.pool): Promise<Map<string, InstanceNetworkView>> {
    const region = this.config.region;
    return new Map(
      (await this.repo.interfacesOf(tx, instanceIds)).map((v): [string, InstanceNetworkView] => [
        v.instanceId,
        {
          interfaceId: v.id,
          attachmentId: v.attachmentId,
          attachTime: v.createdAt,
          mac: v.mac,
          privateIp: v.privateIp,
          privateDnsName: privateDnsName(v.privateIp, this.config.dnsSuffix),
          subnetId: defaultSubnetId(region, v.zone),
          vpcId: defaultVpcId(region),
          ...(v.publicIp
            ? {
                publicIp: v.publicIp,
                publicDnsName: publicDnsName(v.publicIp, region),
                // EC2: a launch-time address belongs to "amazon", an elastic one to its account.
                ipOwnerId: v.publicKind === 'elastic' ? (v.publicOwnerId ?? undefined) : 'amazon',
                associationId: v.associationId ?? undefined,
                allocationId: v.publicKind === 'elastic' ? (v.allocationId ?? undefined) : undefined,
              }
            : {}),
        },
      ]),
    );
  }

  /** ModifyInstanceMetadataOptions: the caller's (admin: any) live instance; returns the options now in force and the zone. */
  async modifyMetadataOptions(caller: Caller, instanceId: string, input: MetadataOptionsInput, dryRun: boolean): Promise<{ zone: string; options: InstanceMetadataOptions }> {
    if (!isValidId('i', instanceId)) throw Ec2Error.malformed('InvalidInstanceID.Malformed', instanceId);
    return this.repo.transaction(async (tx) => {
      const i = await this.repo.lockInstance(tx, instanceId);
      if (!i || !allows(accessOf(caller, i), 'change')) throw Ec2Error.notFound('InvalidInstanceID.NotFound', instanceId);
      if (i.state === 'terminated' || i.state === 'shutting-down') throw Ec2Error.incorrectInstanceState(i.id, i.state, 'modified');
      const current = await this.metadataOf(tx, instanceId);
      if (dryRun) throw Ec2Error.dryRun();
      const options: InstanceMetadataOptions = {
        httpTokens: input.httpTokens ?? current.httpTokens,
        httpPutResponseHopLimit: input.httpPutResponseHopLimit ?? current.httpPutResponseHopLimit,
        httpEndpoint: input.httpEndpoint ?? current.httpEndpoint,
      };
      await this.repo.setMetadataOptions(tx, instanceId, options);
      return { zone: i.zone, options };
    });
  }

  private async metadataOf(tx: Tx, instanceId: string): Promise<InstanceMetadataOptions> {
    return (await this.repo.metadataOptions(tx, instanceId)) ?? DEFAULT_METADATA_OPTIONS;
  }

  /**
   * The zone's desired network state now. Built under the lock of the zone's version row, so
   * builders run one after another and each sees every change committed before it; the version
   * grows exactly when the content differs from the last one built. Nodes the zone's CC lists
   * (and nodes hosting instances) get an address from the subnet the first time they are seen.
   */
  async state(zone: string, seen: readonly string[] = []): Promise<ZoneNetworkState> {
    const subnet = this.subnet(zone);
    const listed = [...(await this.zoneNodes.nodes(zone).catch(() => [] as string[])), ...seen].filter((n) => NODE_NAME.test(n));
    return this.repo.transaction(async (tx) => {
      const now = this.clock.now();
      const last = await this.repo.lockVersion(tx, zone, now);
      const nodes = await this.repo.nodeAddresses(tx, zone);
      const missing = [...new Set([...listed, ...(await this.repo.instanceNodes(tx, zone))])].filter((n) => !nodes.some((k) => k.node === n)).sort();
      if (missing.length) {
        await this.repo.lockZone(tx, zone);
        const used = await this.repo.usedPrivateIps(tx, zone);
        for (const node of missing) {
          const address = nextPrivateIp(subnet, used);
          if (!address) break; // a full subnet: the node waits for a released address
          used.push(address);
          await this.repo.insertNodeAddress(tx, zone, node, address, now);
          nodes.push({ node, address });
        }
      }
      const interfaces = await this.repo.liveInterfaces(tx, zone);
      const { groups, rules } = await this.repo.groupsWithRules(tx, [...new Set(interfaces.flatMap((i) => i.groupIds))]);
      const build = (version: number) => buildZoneNetworkState({ zone, version, subnet: subnet.cidr, dnsSuffix: this.config.dnsSuffix, generatedAt: now, nodes, interfaces, groups, rules });
      let state = build(last.version);
      const digest = stateDigest(state);
      if (digest !== last.digest) {
        state = build(last.version + 1);
        await this.repo.saveVersion(tx, zone, state.version, digest, now);
      }
      return state;
    });
  }

  /** Zones whose state is published periodically. */
  zones(): Promise<string[]> {
    return this.repo.zones();
  }

  /** Zones a rule change of the group touches. */
  zonesOfGroup(groupId: string): Promise<string[]> {
    return this.repo.zonesOfGroup(this.repo.pool, groupId);
  }
}
