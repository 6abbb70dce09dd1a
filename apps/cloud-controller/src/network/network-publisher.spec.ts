import type { KoalaConfig } from '@koala/config';
import type { ZoneNetworkState } from '@koala/contracts';
import type { Logger } from '@koala/logging';
import type { NetworkBusPort } from './network-bus.port.js';
import { NetworkPublisher } from './network-publisher.js';
import type { NetworkService } from './network.service.js';

const state = (zone: string, version: number): ZoneNetworkState => ({ zone, version, subnet: '10.0.0.0/24', dnsSuffix: 's', nodes: [], interfaces: [], groups: [], generatedAt: '' });

/** A network service whose builds finish when the test says so. */
function fakes() {
  const builds: Array<{ zone: string; finish: () => void; fail: (e: Error) => void }> = [];
  let running = 0;
  let most = 0;
  let version = 0;
  const network = {
    state: (zone: string) =>
      new Promise<ZoneNetworkState>((resolve, reject) => {
        most = Math.max(most, ++running);
        builds.push({
          zone,
          finish: () => {
            running--;
            resolve(state(zone, ++version));
          },
          fail: (e) => {
            running--;
            reject(e);
          },
        });
      }),
    zones: async () => ['a', 'b'],
    zonesOfGroup: async () => ['b'],
  } as unknown as NetworkService;
  const published: ZoneNetworkState[] = [];
  let answer: ((zone: string, node: string) => Promise<ZoneNetworkState | undefined>) | undefined;
  const bus: NetworkBusPort = {
    publish: (s) => void published.push(s),
    serve: (a) => {
      answer = a;
      return () => (answer = undefined);
    },
  };
  const warnings: unknown[] = [];
  const logger = { warn: (o: unknown) => warnings.push(o) } as unknown as Logger;
  const config = { networkRepublishMs: 3_600_000, zoneSubnets: { a: '10.0.0.0/24' } } as unknown as KoalaConfig;
  const publisher = new NetworkPublisher(network, bus, config, logger);
  return { publisher, builds, published, warnings, most: () => most, ask: (zone: string) => answer!(zone, 'n1') };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('NetworkPublisher', () => {
  it('coalesces changes during a build into one more build; builds of a zone never overlap', async () => {
    const f = fakes();
    f.publisher.changed(['a']);
    await tick();
    expect(f.builds).toHaveLength(1);
    f.publisher.changed(['a']);
    f.publisher.changed(['a', 'a']);
    await tick();
    expect(f.builds).toHaveLength(1); // waits for the build in flight
    f.builds[0]!.finish();
    await tick();
    await tick();
    expect(f.builds).toHaveLength(2); // one more for the three changes
    f.builds[1]!.finish();
    await tick();
    await tick();
    expect(f.builds).toHaveLength(2);
    expect(f.published.map((s) => s.version)).toEqual([1, 2]);
    expect(f.most()).toBe(1);
  });

  it('publish() resolves only after a state built after the call was sent', async () => {
    const f = fakes();
    const first = f.publisher.publish('a');
    await tick();
    const second = f.publisher.publish('a');
    let done = false;
    void second.then(() => (done = true));
    f.builds[0]!.finish();
    await tick();
    await tick();
    expect(f.published).toHaveLength(1);
    expect(done).toBe(false); // the state sent so far was built before the second call
    expect(f.builds).toHaveLength(2);
    f.builds[1]!.finish();
    await Promise.all([first, second]);
    expect(done).toBe(true);
    expect(f.published).toHaveLength(2);
  });

  it('a failed build is logged, not thrown; other zones go on', async () => {
    const f = fakes();
    f.publisher.changed(['a', 'b']);
    await tick();
    f.builds[0]!.fail(new Error('db down'));
    f.builds[1]!.finish();
    await tick();
    await tick();
    expect(f.warnings).toHaveLength(1);
    expect(f.published.map((s) => s.zone)).toEqual(['b']);
  });

  it('rule changes publish the zones of the group; requests are answered for known zones only', async () => {
    const f = fakes();
    f.publisher.onApplicationBootstrap();
    try {
      f.publisher.rulesChanged('sg-00000000000000001');
      await tick();
      await tick();
      expect(f.builds.map((b) => b.zone)).toEqual(['b']);
      f.builds[0]!.finish();
      expect(await f.ask('nowhere')).toBeUndefined();
      const asked = f.ask('a'); // listed in KOALA_ZONE_SUBNETS
      await tick();
      f.builds[1]!.finish();
      expect((await asked)?.zone).toBe('a');
    } finally {
      await f.publisher.onModuleDestroy();
    }
  });
});
