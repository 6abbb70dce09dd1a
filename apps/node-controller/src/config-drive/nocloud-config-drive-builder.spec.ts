import type { ConfigDriveContent } from './config-drive.js';
import type { IsoFile, IsoMaker } from './iso-maker.js';
import { GenisoimageIsoMaker } from './iso-maker.js';
import { NoCloudConfigDriveBuilder, configDriveFiles, renderMetaData, renderOpenStackMetaData, yamlScalar } from './nocloud-config-drive-builder.js';

const content: ConfigDriveContent = {
  instanceId: 'i-0123456789abcdef0',
  hostname: 'ip-10-1-2-3',
  userData: Buffer.from([0x1f, 0x8b, 0x00, 0xff, 0x0a]),
  publicKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0 alice@example: laptop', 'ssh-rsa AAAAB3Nza bob'],
  keyName: 'alice',
  availabilityZone: 'koala-1a',
  launchIndex: 2,
  reservationId: 'r-0123456789abcdef0',
};

class RecordingIsoMaker implements IsoMaker {
  calls: { label: string; files: IsoFile[] }[] = [];
  async make(label: string, files: IsoFile[]): Promise<Buffer> {
    this.calls.push({ label, files });
    return Buffer.from('ISO');
  }
}

describe('NoCloudConfigDriveBuilder', () => {
  it('writes NoCloud meta-data as YAML cloud-init and tiny-linux read', () => {
    expect(renderMetaData(content)).toBe(
      [
        'instance-id: i-0123456789abcdef0',
        'local-hostname: ip-10-1-2-3',
        'availability-zone: koala-1a',
        'reservation-id: r-0123456789abcdef0',
        'launch-index: 2',
        'public-keys:',
        '  - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0 alice@example: laptop"',
        '  - "ssh-rsa AAAAB3Nza bob"',
        '',
      ].join('\n'),
    );
    expect(renderMetaData({ ...content, publicKeys: [] })).not.toContain('public-keys');
  });

  it('quotes YAML scalars that would not read back as the same string', () => {
    expect(yamlScalar('host-1')).toBe('host-1');
    expect(yamlScalar('yes')).toBe('"yes"');
    expect(yamlScalar('123')).toBe('"123"');
    expect(yamlScalar('a: b\n#c')).toBe('"a: b\\n#c"');
  });

  it('writes OpenStack config-2 meta_data.json', () => {
    expect(JSON.parse(renderOpenStackMetaData(content))).toEqual({
      uuid: 'i-0123456789abcdef0',
      name: 'ip-10-1-2-3',
      hostname: 'ip-10-1-2-3',
      availability_zone: 'koala-1a',
      launch_index: 2,
      reservation_id: 'r-0123456789abcdef0',
      public_keys: { alice: content.publicKeys[0], 'key-1': content.publicKeys[1] },
      keys: [
        { name: 'alice', type: 'ssh', data: content.publicKeys[0] },
        { name: 'key-1', type: 'ssh', data: content.publicKeys[1] },
      ],
      meta: {},
    });
  });

  it('always has user-data (maybe empty); user_data only when there is some', () => {
    expect(configDriveFiles(content).map((f) => f.path)).toEqual(['meta-data', 'user-data', 'openstack/latest/meta_data.json', 'openstack/latest/user_data']);
    expect(configDriveFiles(content)[1].data).toEqual(content.userData);
    const none = configDriveFiles({ ...content, userData: undefined });
    expect(none.map((f) => f.path)).toEqual(['meta-data', 'user-data', 'openstack/latest/meta_data.json']);
    expect(none[1].data).toEqual(Buffer.alloc(0));
  });

  it('asks the IsoMaker for a volume labelled cidata', async () => {
    const iso = new RecordingIsoMaker();
    await expect(new NoCloudConfigDriveBuilder(iso).build(content)).resolves.toEqual(Buffer.from('ISO'));
    expect(iso.calls[0].label).toBe('cidata');
    expect(iso.calls[0].files).toEqual(configDriveFiles(content));
  });

  it('GenisoimageIsoMaker refuses paths that leave its scratch directory, and bad labels', async () => {
    const maker = new GenisoimageIsoMaker({ binary: '/nonexistent/genisoimage' });
    await expect(maker.make('cidata', [{ path: '../x', data: 'x' }])).rejects.toThrow(/invalid ISO file path/);
    await expect(maker.make('cidata', [{ path: '/etc/x', data: 'x' }])).rejects.toThrow(/invalid ISO file path/);
    await expect(maker.make('ci data', [])).rejects.toThrow(/invalid ISO volume label/);
  });
});
