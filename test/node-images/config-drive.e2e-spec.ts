// The config drive as a guest sees it: built with the real genisoimage, read back with isoinfo
// (package genisoimage): volume label, Rock Ridge / Joliet names and exact file contents.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigDriveContent } from '../../apps/node-controller/src/config-drive/config-drive.js';
import { GenisoimageIsoMaker } from '../../apps/node-controller/src/config-drive/iso-maker.js';
import { NoCloudConfigDriveBuilder, renderMetaData, renderOpenStackMetaData } from '../../apps/node-controller/src/config-drive/nocloud-config-drive-builder.js';

const isoinfo = (iso: string, ...args: string[]): Buffer => execFileSync('isoinfo', ['-i', iso, ...args], { maxBuffer: 16 * 1024 * 1024 });

describe('NoCloudConfigDriveBuilder with genisoimage', () => {
  let dir: string;
  let scratch: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'koala-test-cidata-'));
    scratch = mkdtempSync(join(tmpdir(), 'koala-test-cidata-scratch-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  const content: ConfigDriveContent = {
    instanceId: 'i-0a1b2c3d4e5f60718',
    hostname: 'ip-198-51-100-7',
    // Binary user-data with every byte value, a NUL and no trailing newline; $(...) must stay inert.
    userData: Buffer.concat([Buffer.from('#!/bin/sh\necho $(id) `id` "$HOME"\n'), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(4096)]),
    publicKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKoala test@koala'],
    keyName: 'my-key',
    availabilityZone: 'koala-1a',
    launchIndex: 0,
    reservationId: 'r-0a1b2c3d4e5f60718',
  };

  function write(buf: Buffer, name: string): string {
    const p = join(dir, name);
    writeFileSync(p, buf);
    return p;
  }

  it('is an ISO 9660 volume labelled cidata with exact meta-data, user-data and config-2 files', async () => {
    const builder = new NoCloudConfigDriveBuilder(new GenisoimageIsoMaker({ tmpDir: scratch }));
    const iso = write(await builder.build(content), 'full.iso');
    expect(isoinfo(iso, '-d').toString()).toMatch(/^Volume id: cidata$/m);
    const pvd = isoinfo(iso, '-d').toString();
    expect(pvd).toMatch(/Rock Ridge signatures version \d+ found/);
    expect(pvd).toMatch(/Joliet with UCS level \d+ found/);
    expect(isoinfo(iso, '-R', '-x', '/meta-data').toString()).toBe(renderMetaData(content));
    expect(isoinfo(iso, '-R', '-x', '/user-data').equals(content.userData!)).toBe(true);
    expect(isoinfo(iso, '-J', '-x', '/user-data').equals(content.userData!)).toBe(true);
    expect(isoinfo(iso, '-R', '-x', '/openstack/latest/meta_data.json').toString()).toBe(renderOpenStackMetaData(content));
    expect(isoinfo(iso, '-R', '-x', '/openstack/latest/user_data').equals(content.userData!)).toBe(true);
    const listing = isoinfo(iso, '-R', '-f').toString().split('\n').filter(Boolean).sort();
    expect(listing).toEqual(['/meta-data', '/openstack', '/openstack/latest', '/openstack/latest/meta_data.json', '/openstack/latest/user_data', '/user-data']);
    // The scratch directory is cleaned up.
    expect(readdirSync(scratch)).toEqual([]);
  });

  it('without user-data: an empty user-data file and no openstack user_data', async () => {
    const iso = write(await new NoCloudConfigDriveBuilder().build({ ...content, userData: undefined, publicKeys: [] }), 'empty.iso');
    expect(isoinfo(iso, '-R', '-x', '/user-data').length).toBe(0);
    expect(isoinfo(iso, '-R', '-f').toString()).not.toContain('user_data');
    expect(isoinfo(iso, '-R', '-x', '/meta-data').toString()).toContain('instance-id: i-0a1b2c3d4e5f60718\n');
  });

  it('reports a failing genisoimage and still removes its scratch directory', async () => {
    const maker = new GenisoimageIsoMaker({ tmpDir: scratch, binary: '/nonexistent/genisoimage' });
    await expect(new NoCloudConfigDriveBuilder(maker).build(content)).rejects.toThrow(/genisoimage failed/);
    expect(readdirSync(scratch)).toEqual([]);
  });
});
