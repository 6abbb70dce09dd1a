// The NC's VolumesModule wired by Nest (config, logger, bus from the runtime module; the NC's
// shared libvirt connection to qemu:///system) answers nodeAttachVolume / nodeDetachVolume on NATS.
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { nodeAttachVolume, nodeDetachVolume, volumeTargetIqn } from '@koala/contracts';
import { loadConfig } from '@koala/config';
import { BusRemoteError, NatsBus } from '@koala/messaging';
import { startDaemon } from '@koala/runtime';
import { VolumeAttacher } from '../../apps/node-controller/src/volumes/volume-attacher.js';
import { NodeLibvirtModule } from '../../apps/node-controller/src/libvirt/node-libvirt.module.js';
import { VolumesModule } from '../../apps/node-controller/src/volumes/volumes.module.js';
import { TestNatsServer } from '../support/nats-server.js';

jest.setTimeout(120_000);

describe('VolumesModule on NATS', () => {
  const zone = `nv-${randomBytes(3).toString('hex')}`;
  const node = `node-${randomBytes(3).toString('hex')}`;
  const home = mkdtempSync(join(tmpdir(), 'koala-nc-volumes-'));
  let nats: TestNatsServer;
  let client: NatsBus;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => {
    nats = await TestNatsServer.start();
    const config = loadConfig({ KOALA_NATS_URL: nats.url, KOALA_ZONE: zone, KOALA_NODE_NAME: node, KOALA_HOME: home, KOALA_LOG_LEVEL: 'warn', KOALA_LIBVIRT_URI: 'qemu:///system' });
    app = (
      await startDaemon(
        'node-controller',
        (ctx) => {
          @Module({ imports: [ctx.runtime, NodeLibvirtModule, VolumesModule] })
          class TestNodeModule {}
          return TestNodeModule;
        },
        { zoned: true, config },
      )
    ).app;
    client = await NatsBus.connect({ url: nats.url, name: 'test-cc', reconnectWaitMs: 200 });
  });

  afterAll(async () => {
    await client?.close();
    await app?.close();
    await nats?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('answers IncorrectState for an instance this node does not run, and detach is idempotent', async () => {
    const instanceId = `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
    const volumeId = `vol-${randomBytes(9).toString('hex').slice(0, 17)}`;
    const target = { iqn: volumeTargetIqn(volumeId), lun: 1, portal: '127.0.0.1:3260', chapUser: 'u', chapSecret: 'never-used-secret' };
    const err = await client.request(nodeAttachVolume(zone, node), { instanceId, node, volumeId, device: '/dev/sdf', target }, { timeoutMs: 30_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(BusRemoteError);
    expect((err as BusRemoteError).code).toBe('IncorrectState');
    expect(await client.request(nodeDetachVolume(zone, node), { instanceId, node, volumeId }, { timeoutMs: 30_000 })).toEqual({ accepted: true });
    // The instance manager can get the attacher to release secrets on terminate.
    expect(await app!.get(VolumeAttacher).releaseAll(instanceId)).toBe(0);
  });
});
