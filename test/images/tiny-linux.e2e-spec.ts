// End-to-end test of the demo image tiny-linux (deploy/images/build-tiny-linux.sh:
// builds (or reuses) the image, boots it under libvirt qemu:///system (TCG here) with direct
// kernel boot, a qcow2 overlay root and a NoCloud config drive, and checks the console protocol:
// banner, instance id, user-data, `NET: none` (no NIC), the `#!` user-data run as a script, block
// device list across a disk hot-plug/unplug, a guest
// reboot via ACPI (virsh reboot) and a clean ACPI power-off (virsh shutdown).
import { jest } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { consoleProtocol } from '../support/console.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = join(ROOT, 'deploy/images/build-tiny-linux.sh');
const IMAGE_DIR = join(process.env.KOALA_HOME ?? '/var/lib/koala', 'images/tiny-linux');
const URI = 'qemu:///system';
const INSTANCE_ID = 'i-0123456789abcdef0';
const USER_DATA = '#!/bin/sh\necho "hello from koala user-data"\nline three: ok\n';

// TCG guests and a libvirtd shared with other tests (qemu capability probes can take a minute).
jest.setTimeout(300_000);

function run(cmd: string, args: string[], opts: { timeout?: number } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeout ?? 240_000 });
}
const virsh = (...args: string[]): string => run('virsh', ['-q', '-c', URI, ...args]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

describe('tiny-linux image', () => {
  const name = `koala-test-tiny-${process.pid}-${Date.now().toString(36)}`;
  let work = '';
  let log = '';
  let files: Record<'kernel' | 'initrd' | 'rootfs', string>;
  let bootMs = 0;

  const consoleText = (): string => (existsSync(log) ? readFileSync(log, 'utf8').replace(/\r/g, '') : '');
  const consoleLines = (): string[] => consoleText().split('\n');
  const blockLines = (): string[] => consoleLines().filter((l) => l.startsWith('BLOCK: '));

  async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v) return v;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; console:\n${consoleText().slice(-3000)}`);
      }
      await sleep(250);
    }
  }

  beforeAll(() => {
    if (spawnSync('virsh', ['-c', URI, 'list']).status !== 0) {
      run('bash', [join(ROOT, 'deploy/scripts/host-services.sh')], { timeout: 600_000 });
    }
    if (!hasCommand('genisoimage')) {
      run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'genisoimage'], { timeout: 600_000 });
    }
    run('bash', [SCRIPT, IMAGE_DIR], { timeout: 600_000 });
    files = {
      kernel: join(IMAGE_DIR, 'vmlinuz'),
      initrd: join(IMAGE_DIR, 'initramfs.img'),
      rootfs: join(IMAGE_DIR, 'rootfs.img'),
    };

    work = mkdtempSync(join(tmpdir(), 'koala-tiny-linux-'));
    chmodSync(work, 0o755); // QEMU runs as libvirt-qemu and must reach the files in here
    log = join(work, 'console.log');
    const cd = join(work, 'cidata');
    mkdirSync(cd);
    writeFileSync(join(cd, 'meta-data'), `instance-id: ${INSTANCE_ID}\nlocal-hostname: tiny-test\n`);
    writeFileSync(join(cd, 'user-data'), USER_DATA);
    run('genisoimage', ['-quiet', '-V', 'cidata', '-J', '-r', '-o', join(work, 'config.iso'), cd]);
    run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', files.rootfs, join(work, 'overlay.qcow2')]);
    run('qemu-img', ['create', '-q', '-f', 'raw', join(work, 'extra.img'), '8M']);

    const xml = `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${files.kernel}</kernel>
    <initrd>${files.initrd}</initrd>
    <cmdline>root=/dev/vda console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${join(work, 'overlay.qcow2')}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='${join(work, 'config.iso')}'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
    <serial type='file'>
      <source path='${log}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
    writeFileSync(join(work, 'domain.xml'), xml);
    writeFileSync(join(work, 'extra.xml'), `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${join(work, 'extra.img')}'/><target dev='vdc' bus='virtio'/></disk>\n`);
    virsh('define', join(work, 'domain.xml'));
  }, 600_000);

  afterAll(() => {
    spawnSync('virsh', ['-c', URI, 'destroy', name], { stdio: 'ignore' });
    spawnSync('virsh', ['-c', URI, 'undefine', name], { stdio: 'ignore' });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('is cached: a second build changes nothing', () => {
    const sums = readFileSync(join(IMAGE_DIR, 'SHA256SUMS'), 'utf8');
    const out = execFileSync('bash', [SCRIPT, IMAGE_DIR], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(readFileSync(join(IMAGE_DIR, 'SHA256SUMS'), 'utf8')).toBe(sums);
    for (const f of Object.values(files)) expect(out).toContain(f);
    const manifest = readFileSync(join(IMAGE_DIR, 'manifest'), 'utf8');
    expect(manifest).toMatch(/^KERNEL_PACKAGE=linux-image-.*-cloud-amd64$/m);
    expect(manifest).toMatch(/^ROOTFS_SHA256=[0-9a-f]{64}$/m);
  });

  it('boots and prints the banner, instance id, user-data and block devices', async () => {
    const t0 = Date.now();
    virsh('start', name);
    const tStarted = Date.now();
    const tFirstOutput = await waitFor('console output', () => consoleText().length > 0 && Date.now(), 90_000);
    await waitFor('TINY-LINUX-BOOTED', () => consoleText().includes('TINY-LINUX-BOOTED\n'), 90_000);
    bootMs = Date.now() - tFirstOutput;
    const startMs = tStarted - t0;
    await waitFor('first BLOCK line', () => blockLines().length > 0, 90_000);
    const text = consoleProtocol(consoleText());
    expect(text).toContain(`INSTANCE-ID: ${INSTANCE_ID}\n`);
    expect(text).toContain(`USER-DATA-BEGIN\n${USER_DATA}USER-DATA-END\n`);
    expect(blockLines()[0]).toBe('BLOCK: vda vdb');
    // No NIC: one NET line; the `#!` user-data runs as a script (its third line is no command).
    expect(text).toContain('USER-DATA-END\nNET: none\nBLOCK: vda vdb\n');
    await waitFor('the user-data script', () => consoleText().includes('USER-DATA-SCRIPT-END'), 30_000);
    expect(consoleProtocol(consoleText())).toMatch(/\nUSER-DATA-SCRIPT-BEGIN\nhello from koala user-data\n[^\n]*line 3: line: not found\nUSER-DATA-SCRIPT-END rc=127\n/);
    console.log(`tiny-linux: virsh start took ${startMs} ms; first console byte -> TINY-LINUX-BOOTED in ${bootMs} ms (TCG)`);
  });

  it('sees a hot-plugged disk appear and go', async () => {
    virsh('attach-device', name, join(work, 'extra.xml'), '--live');
    await waitFor('BLOCK line with vdc', () => blockLines().at(-1) === 'BLOCK: vda vdb vdc', 30_000);
    virsh('detach-device', name, join(work, 'extra.xml'), '--live');
    await waitFor('BLOCK line without vdc', () => blockLines().at(-1) === 'BLOCK: vda vdb', 30_000);
    expect(blockLines()).toEqual(['BLOCK: vda vdb', 'BLOCK: vda vdb vdc', 'BLOCK: vda vdb']);
  });

  it('reboots through ACPI (virsh reboot)', async () => {
    virsh('reboot', name);
    await waitFor('second boot', () => consoleText().split('TINY-LINUX-BOOTED\n').length === 3 && blockLines().length === 4, 90_000);
    expect(consoleText()).toContain('TINY-LINUX-SHUTDOWN: poweroff\n');
    expect(virsh('domstate', name).trim()).toBe('running');
  });

  it('powers off cleanly on the ACPI power button (virsh shutdown)', async () => {
    const before = consoleText().split('TINY-LINUX-SHUTDOWN: poweroff\n').length;
    virsh('shutdown', name);
    await waitFor('shut off', () => virsh('domstate', name).trim() === 'shut off', 60_000);
    expect(consoleText().split('TINY-LINUX-SHUTDOWN: poweroff\n').length).toBe(before + 1);
    // Clean: the guest remounted / read-only before powering off, so the ext4 state is "clean".
    const raw = join(work, 'root-after.raw');
    run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', join(work, 'overlay.qcow2'), raw]);
    expect(run('dumpe2fs', ['-h', raw])).toMatch(/^Filesystem state:\s+clean$/m);
    run('e2fsck', ['-fn', raw]);
  });
});
