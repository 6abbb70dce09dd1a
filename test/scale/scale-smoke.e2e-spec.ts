/**
 * A shortened scale run (the scale bench's correctness, not its timings): 20 simulated nodes of
 * different sizes (each its own test-driver host, 10 NCs a process), a real CLC and CC as
 * processes on a private nats-server, 100 t1.micro through the EC2 API until running, then
 * all terminated. Asserts every instance placed once, no capacity exceeded, none lost, and every
 * node's domains equal to the CLC's view. Needs `npm run build` (as the CLI test does).
 */
import { jest } from '@jest/globals';
import { loadInstanceTypes } from '../../apps/cloud-controller/src/instance-types/instance-types.service.js';
import { checkScale, launchAll, startScaleCloud, terminateAll, type ScaleCheck, type ScaleCloud } from '../support/scale-harness.js';

jest.setTimeout(120_000);

const NODES = 20;
const INSTANCES = 100;
const types = new Map(loadInstanceTypes(undefined).map((t) => [t.name, t]));
const resources = (name: string) => types.get(name)!;

/** Heartbeats carry the domains: wait (a few beats) until the nodes' reports settle. */
async function settled(cloud: ScaleCloud, launched: string[]): Promise<ScaleCheck> {
  let last: ScaleCheck | undefined;
  for (let i = 0; i < 40; i++) {
    last = await checkScale(cloud, launched, resources);
    if (!last.mismatched.length) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  return last!;
}

describe('scale smoke (20 nodes, 100 instances)', () => {
  let cloud: ScaleCloud;

  beforeAll(async () => {
    // hosts of 3..7 cores (1 GiB): 100 t1.micro fill the zone exactly
    cloud = await startScaleCloud({ nodes: NODES, nodesPerProcess: 10, heartbeatMs: 500, host: (k) => ({ cores: 3 + (k % 5), memoryMiB: 1024 }) });
  }, 90_000);

  afterAll(async () => {
    await cloud?.close();
  });

  it('places every instance once, within capacity, and nodes agree with the CLC', async () => {
    const capacity = cloud.nodes.reduce((a, n) => a + Math.min(n.cores, Math.floor(n.memoryMiB / 128)), 0);
    expect(capacity).toBe(100); // 4 x (3+4+5+6+7): the run fills the zone exactly
    const ec2 = cloud.ec2();
    const r = await launchAll(ec2, { imageId: cloud.imageId, zone: cloud.zone, instances: INSTANCES, concurrency: 4, timeoutMs: 60_000 });
    expect(r.errors).toEqual([]);
    expect(r.failed).toEqual([]);
    expect(new Set(r.launched).size).toBe(INSTANCES);
    const check = await settled(cloud, r.launched);
    expect(check).toEqual({ lost: [], duplicated: [], overcommitted: [], mismatched: [] });
    // full means full: one more is refused, not squeezed in
    const more = await launchAll(ec2, { imageId: cloud.imageId, zone: cloud.zone, instances: 1, concurrency: 1, timeoutMs: 1000 });
    expect(more.launched).toEqual([]);
    expect(more.errors).toEqual([expect.stringMatching(/^InsufficientInstanceCapacity/)]);

    await terminateAll(ec2, r.launched, { concurrency: 2, timeoutMs: 30_000 });
    const after = await settled(cloud, r.launched);
    expect(after.mismatched).toEqual([]);
    const left = (await cloud.domains()).flatMap((n) => n.domains.filter((d) => d.instanceId));
    expect(left).toEqual([]);
  });
});
