import { busPrincipals, busUser, natsPermissions } from './permissions.js';

/** NATS subject matching (`*` one token, `>` the rest), to read the table as the server does. */
const matches = (pattern: string, subject: string) => {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
};
const may = (rules: { allow: string[]; deny?: string[] }, subject: string) => rules.allow.some((a) => matches(a, subject)) && !(rules.deny ?? []).some((d) => matches(d, subject));

describe('natsPermissions (the bus permission table)', () => {
  const nc = natsPermissions({ kind: 'nc', zone: 'z1', node: 'n1' });
  const cc = natsPermissions({ kind: 'cc', zone: 'z1' });
  const sc = natsPermissions({ kind: 'sc', zone: 'z1' });
  const clc = natsPermissions({ kind: 'clc' });
  const cli = natsPermissions({ kind: 'cli' });

  it('gives an NC its own node commands, its zone’s network state, its heartbeat and events', () => {
    expect(may(nc.subscribe, 'koala.v1.zone.z1.node.n1.attach-volume')).toBe(true);
    expect(may(nc.subscribe, 'koala.v1.zone.z1.node.n2.attach-volume')).toBe(false);
    expect(may(nc.subscribe, 'koala.v1.zone.z1.network.state')).toBe(true);
    expect(may(nc.subscribe, 'koala.v1.zone.z2.network.state')).toBe(false);
    expect(may(nc.subscribe, '_INBOX.nc-n1.abc.1')).toBe(true);
    expect(may(nc.subscribe, '_INBOX.clc.abc.1')).toBe(false);
    expect(may(nc.publish, 'koala.v1.zone.z1.node.heartbeat')).toBe(true);
    expect(may(nc.publish, 'koala.v1.events.instance.z1')).toBe(true);
    expect(may(nc.publish, 'koala.v1.events.instance.z2')).toBe(false);
    expect(may(nc.publish, 'koala.v1.zone.z1.node.n1.run-instance')).toBe(false);
    expect(may(nc.publish, 'koala.v1.clc.network-state')).toBe(true);
    expect(may(nc.publish, 'koala.v1.clc.list-exports')).toBe(false);
    expect(nc.allowResponses).toBe(true);
  });

  it('lets only the zone’s CC publish NC commands, and only the CLC the network state and SC commands', () => {
    const ncCommand = 'koala.v1.zone.z1.node.n1.run-instance';
    expect([clc, cc, sc, nc, cli, natsPermissions({ kind: 'cc', zone: 'z2' })].map((p) => may(p.publish, ncCommand))).toEqual([false, true, false, false, false, false]);
    expect(may(cc.publish, 'koala.v1.zone.z1.node.heartbeat')).toBe(false);
    expect([clc, cc, sc, nc, cli].map((p) => may(p.publish, 'koala.v1.zone.z1.network.state'))).toEqual([true, false, false, false, false]);
    expect([clc, cc, sc, nc, cli].map((p) => may(p.publish, 'koala.v1.zone.z1.sc.export-volume'))).toEqual([true, false, false, false, false]);
    expect([clc, cc, sc, nc, cli].map((p) => may(p.publish, 'koala.v1.zone.z1.sc.heartbeat'))).toEqual([false, false, true, false, false]);
    expect([clc, cc, sc, nc, cli].map((p) => may(p.publish, '$JS.API.STREAM.UPDATE.KOALA_EVENTS'))).toEqual([true, false, false, false, false]);
    expect([clc, cc, sc, nc, cli].some((p) => may(p.publish, '$JS.API.STREAM.DELETE.KOALA_EVENTS'))).toBe(false);
  });

  it('names users per zone and per node, and refuses names that are not subject tokens or repeat', () => {
    expect(busPrincipals([{ zone: 'z1', nodes: ['n1'] }]).map(busUser)).toEqual(['clc', 'cli', 'cc-z1', 'sc-z1', 'nc-n1']);
    expect(() =>
      busPrincipals([
        { zone: 'z1', nodes: ['n1'] },
        { zone: 'z2', nodes: ['n1'] },
      ]),
    ).toThrow(/twice/);
    expect(() => busPrincipals([{ zone: 'z.*', nodes: [] }])).toThrow(/invalid zone/);
    expect(() => busPrincipals([{ zone: 'z1', nodes: ['>'] }])).toThrow(/invalid node/);
  });
});
