import type { ZoneNetworkState } from '@koala/contracts';
import type { NodeNetConfig } from './network-plan.js';

/** A small zone for the network agent's specs: two nodes, three instances, two groups. */
export function sampleState(version = 7): ZoneNetworkState {
  return {
    zone: 'koala-1a',
    version,
    subnet: '172.31.0.0/20',
    dnsSuffix: 'koala-1a.compute.internal',
    nodes: [
      { node: 'node-a', address: '172.31.0.2' },
      { node: 'node-b', address: '172.31.0.3' },
    ],
    interfaces: [
      { instanceId: 'i-00000000000000b1', node: 'node-b', mac: '02:00:00:00:00:b1', privateIp: '172.31.0.21', publicIp: '198.51.100.21', groupIds: ['sg-0000000a'] },
      { instanceId: 'i-00000000000000a2', node: 'node-a', mac: '02:00:00:00:00:a2', privateIp: '172.31.0.12', groupIds: ['sg-0000000a', 'sg-0000000b'] },
      { instanceId: 'i-00000000000000a1', node: 'node-a', mac: '02:00:00:00:00:a1', privateIp: '172.31.0.11', publicIp: '198.51.100.11', groupIds: ['sg-0000000a'] },
    ],
    groups: [
      {
        groupId: 'sg-0000000b',
        name: 'web',
        ingress: [
          { protocol: 'tcp', fromPort: 80, toPort: 80, cidrs: ['0.0.0.0/0'], groupIds: [] },
          { protocol: 'tcp', fromPort: 8000, toPort: 8080, cidrs: ['203.0.113.0/24'], groupIds: [] },
        ],
        egress: [],
      },
      {
        groupId: 'sg-0000000a',
        name: 'default',
        ingress: [
          { protocol: 'all', fromPort: -1, toPort: -1, cidrs: [], groupIds: ['sg-0000000a'] },
          { protocol: 'tcp', fromPort: 22, toPort: 22, cidrs: ['203.0.113.7/32', '198.51.100.0/24'], groupIds: [] },
          { protocol: 'icmp', fromPort: 8, toPort: -1, cidrs: ['0.0.0.0/0'], groupIds: [] },
        ],
        egress: [{ protocol: 'all', fromPort: -1, toPort: -1, cidrs: ['0.0.0.0/0'], groupIds: [] }],
      },
    ],
    generatedAt: '2026-12-07T01:00:00.000Z',
  };
}

export const nodeA: NodeNetConfig = { node: 'node-a', bridge: 'koala-br0', uplink: 'seg0', publicIf: 'pub0', metadataPort: 8775 };
