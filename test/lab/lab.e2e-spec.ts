// The multi-node lab (test/support/lab.ts, deploy/scripts/koala-node-netns.sh) end to end: two
// node hosts on one segment, each with its own libvirtd. In each node a libvirt network
// (forward mode='open', bridge koala-br0, the node's own address, one static DHCP host) with the
// node's uplink enslaved, and one tiny-linux guest (TCG). Checked on the consoles: both guests
// get their DHCP address from their own node (`NET:` lines, dnsmasq leases), and guest 1's
// user-data script pings guest 2 and fetches a page from its httpd, across the segment. Also the
// iSCSI relay (a login to the host's tgtd from inside a node) and that stop() leaves nothing.
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDomainXml, Libvirt } from '@koala/libvirt';
import { NODE_NETNS_SCRIPT, startLab, type Lab, type LabNode } from '../support/lab.js';
import { until } from '../support/wait.js';
import { consoleProtocol } from '../support/console.js';

jest.setTimeout(300_000);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE_DIR = join(tmpdir(), 'koala-test-images', 'tiny-linux');
const tag = randomBytes(3).toString('hex');
const NET = 'koala-lab';
const BRIDGE = 'koala-br0';

/** Node address and its one guest, per node (the zone's subnet is 10.99.0.0/24, inside the lab only). */
const PLAN = [
  { node: 'n1', address: '10.99.0.2', guestIp: '10.99.0.11', mac: '02:00:00:99:00:11' },
  { node: 'n2', address: '10.99.0.3', guestIp: '10.99.0.12', mac: '02:00:00:99:00:12' },
] as const;

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });

/** An iSCSI Login Request PDU (RFC 7143 §11.12) for a discovery session without authentication. */
function iscsiLoginPdu(): Buffer {
  const text = Buffer.from('InitiatorName=iqn.2026-12.dev.koala:lab-test\0SessionType=Discovery\0AuthMethod=None\0');
  const data = Buffer.alloc(Math.ceil(text.length / 4) * 4);
  text.copy(data);
  const bhs = Buffer.alloc(48);
  bhs[0] = 0x43; // immediate, opcode 0x03 Login Request
  bhs[1] = 0x81; // transit, CSG 0 (security negotiation) -> NSG 1 (operational negotiation)
  bhs.writeUIntBE(text.length, 5, 3); // DataSegmentLength (without padding)
  Buffer.from([0x00, 0x02, 0x3d, 0x00, 0x00, 0x01]).copy(bhs, 8); // ISID
  bhs.writeUInt32BE(1, 16); // Initiator Task Tag
  return Buffer.concat([bhs, data]);
}

describe('multi-node lab (node namespaces with their own libvirtd on one segment)', () => {
  let lab: Lab | undefined;
  let work = '';
  const consoles: string[] = [];

  beforeAll(async () => {
    execFileSync('bash', [join(ROOT, 'deploy/images/build-tiny-linux.sh'), IMAGE_DIR], { stdio: 'ignore', timeout: 600_000 });
    work = mkdtempSync(join(tmpdir(), 'koala-lab-'));
    chmodSync(work, 0o755); // QEMU runs as libvirt-qemu and must reach the files in here
    lab = await startLab({ nodes: PLAN.map((p) => p.node), segment: true });
  }, 660_000);

  afterAll(async () => {
    await lab?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('gives each node its own namespace, libvirtd and uplink, and relays iSCSI to the host tgtd', async () => {
    const [n1, n2] = lab!.nodes as [LabNode, LabNode];
    expect(n1.netns).not.toBe(n2.netns);
    expect(n1.netns.length).toBeLessThanOrEqual(15);
    expect(sh('ip', ['netns', 'list'])).toContain(n1.netns);
    for (const n of [n1, n2]) {
      expect(n.uplink).toBe('koala-up0');
      expect(await n.run(['ip', '-o', 'link', 'show', 'koala-up0'])).toMatch(/koala-up0@/);
      expect((await n.run('cat /proc/sys/net/ipv4/ip_forward')).trim()).toBe('1');
      expect((await n.run('cat /proc/sys/net/bridge/bridge-nf-call-iptables')).trim()).toBe('1');
      // Its own daemon: a fresh libvirtd with no domains or networks of the host's.
      const lv = await Libvirt.connect({ socketPath: n.libvirtSocket, uri: 'qemu:///system' });
      try {
        expect(await lv.listAllDomains()).toEqual([]);
      } finally {
        await lv.close();
      }
      expect(sh('virsh', ['-q', '-c', n.libvirtUri, 'net-list', '--all', '--name']).trim()).toBe('');
    }
    expect(sh('ip', ['-n', lab!.segmentNs!, '-o', 'link', 'show', 'master', 'koala-seg']).trim().split('\n')).toHaveLength(2);
    // `up` of a running node changes nothing (same daemon); `down` of an absent node succeeds.
    const pid = readFileSync(join(n1.runDir, 'libvirtd.pid'), 'utf8');
    expect(sh(NODE_NETNS_SCRIPT, ['up', n1.netns, '--uplink-to', lab!.segmentNs!])).toContain(`LIBVIRT_SOCKET=${n1.libvirtSocket}\n`);
    expect(readFileSync(join(n1.runDir, 'libvirtd.pid'), 'utf8')).toBe(pid);
    sh(NODE_NETNS_SCRIPT, ['down', `kl${lab!.id}-absent`]);
    // Hostile names are refused before anything is made.
    for (const bad of ['a;touch /tmp/x', '../etc', 'x'.repeat(16), 'Ünï', '-x', '']) {
      expect(() => execFileSync(NODE_NETNS_SCRIPT, ['up', bad], { stdio: 'pipe' })).toThrow();
    }
    expect(sh('ip', ['netns', 'list'])).not.toMatch(/^(\.\.|x{16}|-x)/m);
    // A login from inside the node reaches the host's tgtd: its answer is a Login Response (0x23).
    // tgtd drops every connection while it has no target, so a target of this test's own is made.
    const tid = 30_000 + (randomBytes(2).readUInt16BE() % 10_000);
    sh('tgtadm', ['--lld', 'iscsi', '--op', 'new', '--mode', 'target', '--tid', String(tid), '--targetname', `iqn.2026-12.dev.koala:lab-${tag}`]);
    try {
      sh('tgtadm', ['--lld', 'iscsi', '--op', 'bind', '--mode', 'target', '--tid', String(tid), '-I', 'ALL']);
      // stdin stays open a moment: tgtd closes a half-closed connection before it answers.
      const reply = execFileSync('ip', ['netns', 'exec', n1.netns, 'sh', '-c', '(cat; sleep 2) | socat -T 10 - TCP:127.0.0.1:3260'], { input: iscsiLoginPdu(), timeout: 30_000 });
      expect(reply.length).toBeGreaterThanOrEqual(48);
      expect(reply[0]! & 0x3f).toBe(0x23);
      expect(reply.subarray(48).toString('latin1')).toContain('TargetPortalGroupTag=');
    } finally {
      sh('tgtadm', ['--lld', 'iscsi', '--op', 'delete', '--mode', 'target', '--tid', String(tid)]);
    }
    // Nothing listens on 3260 in a namespace without the relay (the segment's): the check can fail.
    expect(() => execFileSync('ip', ['netns', 'exec', lab!.segmentNs!, 'bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/3260'], { stdio: 'ignore' })).toThrow();
  });

  it('boots a guest per node; both get DHCP addresses from their node and reach each other across the segment', async () => {
    const nodes = lab!.nodes;
    const files = { kernel: join(IMAGE_DIR, 'vmlinuz'), initrd: join(IMAGE_DIR, 'initramfs.img'), rootfs: join(IMAGE_DIR, 'rootfs.img') };
    const peer = PLAN[1].guestIp;
    const userData = [
      // guest 1: wait for guest 2, ping it, fetch its page
      `#!/bin/sh\nn=0\nwhile ! ping -c 1 -W 1 ${peer} >/dev/null 2>&1 && [ $n -lt 120 ]; do n=$((n + 1)); sleep 1; done\nping -c 3 ${peer} || exit 1\nn=0\nwhile ! wget -q -O /tmp/page http://${peer}/ 2>/dev/null && [ $n -lt 60 ]; do n=$((n + 1)); sleep 1; done\ncat /tmp/page\n`,
      // guest 2: serve a page (busybox httpd backgrounds itself)
      `#!/bin/sh\nmkdir -p /tmp/www && echo "hello from guest 2 ${tag}" >/tmp/www/index.html && httpd -p 80 -h /tmp/www && echo httpd started\n`,
    ];

    const conns: Libvirt[] = [];
    try {
      for (const [i, node] of nodes.entries()) {
        const p = PLAN[i]!;
        // The node's network: open forwarding (no libvirt firewall rules), static DHCP only.
        const netXml = join(work, `${node.name}-net.xml`);
        writeFileSync(
          netXml,
          `<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>${NET}</name><forward mode='open'/><bridge name='${BRIDGE}' stp='off' delay='0'/>` +
            `<ip address='${p.address}' prefix='24'><dhcp><host mac='${p.mac}' ip='${p.guestIp}' name='guest-${node.name}'/></dhcp></ip>` +
            // libvirt makes dnsmasq authoritative: on a shared segment it would NAK the other
            // nodes' guests when they rebind (broadcast REQUEST); unknown clients are ignored instead.
            `<dnsmasq:options><dnsmasq:option value='dhcp-ignore=tag:!known'/></dnsmasq:options></network>\n`,
        );
        sh('virsh', ['-q', '-c', node.libvirtUri, 'net-define', netXml]);
        sh('virsh', ['-q', '-c', node.libvirtUri, 'net-start', NET]);
        expect(readFileSync(join(node.stateDir, 'lib', 'dnsmasq', `${NET}.conf`), 'utf8')).toContain('\ndhcp-ignore=tag:!known\n');
        await node.run(`ip link set ${node.uplink} master ${BRIDGE} && ip link set ${node.uplink} up`);
        // The bridge exists in the node only, never in the machine's own namespace.
        expect(() => execFileSync('ip', ['link', 'show', BRIDGE], { stdio: 'ignore' })).toThrow();

        // The guest: NoCloud config drive, qcow2 overlay over the image's root fs, virtio NIC.
        const dir = join(work, node.name);
        mkdirSync(join(dir, 'cidata'), { recursive: true });
        chmodSync(dir, 0o755);
        writeFileSync(join(dir, 'cidata', 'meta-data'), `instance-id: i-lab${tag}${i}\nlocal-hostname: guest-${node.name}\n`);
        writeFileSync(join(dir, 'cidata', 'user-data'), userData[i]!);
        sh('genisoimage', ['-quiet', '-V', 'cidata', '-J', '-r', '-o', join(dir, 'config.iso'), join(dir, 'cidata')]);
        sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', files.rootfs, join(dir, 'root.qcow2')]);
        consoles[i] = join(dir, 'console.log');
        const lv = await Libvirt.connect({ socketPath: node.libvirtSocket, uri: 'qemu:///system' });
        conns.push(lv);
        const dom = await lv.defineDomain(
          buildDomainXml({
            name: `koala-lab-${tag}-${node.name}`,
            type: 'qemu',
            memoryMiB: 192,
            vcpus: 1,
            boot: { kind: 'kernel', kernel: files.kernel, initrd: files.initrd, cmdline: 'root=/dev/vda console=ttyS0' },
            disks: [
              { kind: 'file', path: join(dir, 'root.qcow2'), format: 'qcow2', targetDev: 'vda' },
              { kind: 'file', path: join(dir, 'config.iso'), format: 'raw', targetDev: 'vdb', readonly: true },
            ],
            interfaces: [{ type: 'network', source: NET, mac: p.mac }],
            serialLog: { path: consoles[i]! },
          }),
        );
        await lv.startDomain(dom);
      }

      const text = (i: number) => (existsSync(consoles[i]!) ? readFileSync(consoles[i]!, 'utf8').replace(/\r/g, '') : '');
      const dump = () => consoles.map((_, i) => `--- guest ${i + 1}:\n${text(i).slice(-2500)}`).join('\n');
      const wait = (what: string, probe: () => boolean, ms: number) =>
        until(() => probe(), ms, what, 500).catch((e: Error) => {
          throw new Error(`${e.message}\n${dump()}`);
        });
      for (const [i, p] of PLAN.entries()) {
        await wait(`guest ${i + 1} NET line`, () => /^NET: /m.test(text(i)), 120_000);
        expect(text(i)).toContain(`NET: eth0 ${p.guestIp}/24 ${p.mac}\n`);
      }
      await wait('guest 2 httpd', () => text(1).includes('USER-DATA-SCRIPT-END'), 60_000);
      expect(text(1)).toContain('httpd started\nUSER-DATA-SCRIPT-END rc=0\n');
      await wait('guest 1 script', () => text(0).includes('USER-DATA-SCRIPT-END'), 180_000);
      const out = text(0).slice(text(0).indexOf('USER-DATA-SCRIPT-BEGIN\n'), text(0).indexOf('USER-DATA-SCRIPT-END'));
      expect(out).toContain(`PING ${peer} (${peer})`);
      expect(out).toContain('3 packets transmitted, 3 packets received, 0% packet loss');
      expect(out).toContain(`hello from guest 2 ${tag}\n`);
      expect(text(0)).toContain('USER-DATA-SCRIPT-END rc=0\n');
      // The existing console protocol is unchanged around the new lines.
      // (kernel messages such as 'eth0: link becomes ready' may land between these lines)
      const protocol = consoleProtocol(text(0));
      expect(protocol).toMatch(/TINY-LINUX-BOOTED\nINSTANCE-ID: i-lab[0-9a-f]+0\nUSER-DATA-BEGIN\n[\s\S]*USER-DATA-END\nNET: eth0 [^\n]+\nBLOCK: vda vdb\n/);

      // Each guest's lease came from its own node's dnsmasq (both saw both DHCP requests).
      for (const [i, node] of nodes.entries()) {
        const dnsmasqDir = join(node.stateDir, 'lib', 'dnsmasq');
        const leases = readdirSync(dnsmasqDir)
          .filter((f) => f.endsWith('.status'))
          .map((f) => readFileSync(join(dnsmasqDir, f), 'utf8'))
          .join('');
        expect(leases).toContain(PLAN[i]!.mac);
        expect(leases).not.toContain(PLAN[1 - i]!.mac);
      }
    } finally {
      for (const lv of conns) await lv.close().catch(() => undefined);
    }
  });

  it('stop() leaves no namespace, process, mount or directory', async () => {
    const l = lab!;
    await l.stop();
    await l.stop(); // idempotent
    const netns = sh('ip', ['netns', 'list']);
    for (const ns of l.namespaces) expect(netns).not.toContain(ns);
    for (const d of l.directories) expect(existsSync(d)).toBe(false);
    const needles = [`kl${l.id}-`, `koala-lab-${tag}`];
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let cmdline = '';
      let mounts = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      for (const n of needles) expect({ pid, has: cmdline.includes(n) || mounts.includes(n) }).toEqual({ pid, has: false });
    }
  });
});
