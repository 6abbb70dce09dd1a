import { loadConfig } from '@koala/config';
import { allInOneNet, componentEnv, parseFacts } from '../supervisor/node-host.js';
import { parseSshArgs, sshArgv } from './ssh.js';

describe('koala ssh arguments', () => {
  it('takes an instance id, -i, -l and a command after --', () => {
    expect(parseSshArgs(['i-0123456789abcdef0', '-i', 'k.pem', '--', 'cat', '/proc/version'])).toEqual({
      instanceId: 'i-0123456789abcdef0',
      identity: 'k.pem',
      user: 'root',
      command: ['cat', '/proc/version'],
    });
    expect(parseSshArgs(['-l', 'ec2-user', 'i-01234567'])).toEqual({ instanceId: 'i-01234567', user: 'ec2-user', command: [] });
  });

  it('refuses anything else with a usage message', () => {
    for (const bad of [[], ['--'], ['i-XYZ'], ['i-01234567', 'extra'], ['i-01234567', '-i'], ['i-01234567', '-l', 'root;rm'], ['i-01234567\0'], ['-o', 'ProxyCommand=x', 'i-01234567']]) {
      expect(typeof parseSshArgs(bad)).toBe('string');
    }
  });

  it('runs ssh in the node namespace, host keys remembered per instance under $KOALA_HOME', () => {
    const argv = sshArgv('koala-node1', '/var/lib/koala', '172.31.0.5', { instanceId: 'i-01234567', identity: '/k', user: 'root', command: ['echo', 'ok'] });
    expect(argv.slice(0, 4)).toEqual(['netns', 'exec', 'koala-node1', 'ssh']);
    expect(argv).toContain('UserKnownHostsFile=/var/lib/koala/known_hosts');
    expect(argv).toContain('HostKeyAlias=i-01234567');
    expect(argv.slice(-4)).toEqual(['root@172.31.0.5', '--', 'echo', 'ok']);
  });
});

describe('all-in-one node host environment', () => {
  const facts = parseFacts('NETNS=koala-node1\nLIBVIRT_SOCKET=/run/koala/nodes/koala-node1/libvirt/libvirt-sock\nUPLINK=koala-up0\nPUBLIC_IF=koala-pub0\nnoise\n');
  const net = allInOneNet(loadConfig({}))!;

  it('names the namespaces from KOALA_AIO_NETNS, or none', () => {
    expect([net.netns, net.segment, net.pub]).toEqual(['koala-node1', 'koala-seg', 'koala-pub']);
    expect(allInOneNet(loadConfig({ KOALA_AIO_NETNS: 'none' }))).toBeUndefined();
    expect(() => loadConfig({ KOALA_AIO_NETNS: 'much-too-long' })).toThrow(/KOALA_AIO_NETNS/);
  });

  it('points the NC at the node libvirtd and namespace, and gives the CLC the subnet and public range unless set', () => {
    const base = { KOALA_HOME: '/h', KOALA_LIBVIRT_SOCKET: '/var/run/libvirt/libvirt-sock', KOALA_PUBLIC_IP_RANGE: '203.0.113.0/24' };
    expect(componentEnv('node-controller', base, net, facts)).toMatchObject({
      KOALA_NODE_NETNS: 'koala-node1',
      KOALA_LIBVIRT_SOCKET: facts.LIBVIRT_SOCKET,
      KOALA_NODE_UPLINK: 'koala-up0',
      KOALA_NODE_PUBLIC_IF: 'koala-pub0',
    });
    expect(componentEnv('cloud-controller', base, net, facts)).toMatchObject({ KOALA_ZONE_SUBNETS: '*=172.31.0.0/20', KOALA_PUBLIC_IP_RANGE: '203.0.113.0/24' });
    expect(componentEnv('cloud-controller', {}, net, facts).KOALA_PUBLIC_IP_RANGE).toBe('198.51.100.128/25');
    expect(componentEnv('storage-controller', base, net, facts)).toBe(base); // the SC keeps the machine's libvirtd
    expect(componentEnv('node-controller', base, undefined, undefined)).toBe(base);
  });
});
