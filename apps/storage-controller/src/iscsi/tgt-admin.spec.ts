import type { CommandRunner } from './command-runner.js';
import { parseTargets, TgtAdmin, TgtError } from './tgt-admin.js';

const SHOW = `Target 1: iqn.2026-11.dev.koala:vol-0123
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 3
            Initiator: iqn.2026-11.dev.koala:node:n1 alias: none
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            Size: 0 MB, Block size: 1
            Backing store path: None
        LUN: 1
            Type: disk
            Size: 1074 MB, Block size: 512
            Backing store type: rdwr
            Backing store path: /var/lib/koala/volumes/vol-0123.img
    Account information:
        vol-0123
    ACL information:
        iqn.2026-11.dev.koala:node:n1
Target 3: iqn.other
    System information:
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
    Account information:
    ACL information:
        ALL
`;

describe('parseTargets', () => {
  it('reads targets, data LUNs, accounts, ACLs and sessions', () => {
    expect(parseTargets(SHOW)).toEqual([
      {
        tid: 1,
        iqn: 'iqn.2026-11.dev.koala:vol-0123',
        luns: [{ lun: 1, backingStore: '/var/lib/koala/volumes/vol-0123.img', sizeMB: 1074 }],
        accounts: ['vol-0123'],
        acl: ['iqn.2026-11.dev.koala:node:n1'],
        sessions: ['iqn.2026-11.dev.koala:node:n1'],
      },
      { tid: 3, iqn: 'iqn.other', luns: [], accounts: [], acl: ['ALL'], sessions: [] },
    ]);
    expect(parseTargets('')).toEqual([]);
  });
});

describe('TgtAdmin', () => {
  it('picks the lowest free tid and retries when it was taken meanwhile', async () => {
    const calls: string[][] = [];
    let shows = 0;
    const runner: CommandRunner = {
      async run(_p, args) {
        calls.push(args);
        if (args.includes('show')) return { code: 0, stderr: '', stdout: shows++ === 0 ? 'Target 1: a\n' : 'Target 1: a\nTarget 2: b\n' };
        if (args.includes('--tid') && args[args.indexOf('--tid') + 1] === '2') return { code: 22, stdout: '', stderr: 'tgtadm: this target already exists' };
        return { code: 0, stdout: '', stderr: '' };
      },
    };
    expect(await new TgtAdmin(runner).createTarget('iqn.x')).toBe(3);
  });

  it('never puts a CHAP password in an error message', async () => {
    const runner: CommandRunner = { run: async () => ({ code: 22, stdout: '', stderr: 'tgtadm: this account already exists' }) };
    const err = await new TgtAdmin(runner).createAccount('u', 'TOP-SECRET-PW').catch((e) => e);
    expect(err).toBeInstanceOf(TgtError);
    expect(err.alreadyExists).toBe(true);
    expect(err.message).not.toContain('TOP-SECRET-PW');
    expect(err.message).toContain('[redacted]');
  });
});
