import type { CommandResult, CommandRunner } from './command-runner.js';

interface FakeTarget {
  tid: number;
  iqn: string;
  luns: Map<number, string>;
  acl: string[];
  accounts: string[];
}

/**
 * An in-memory tgtd behind the CommandRunner interface: understands the tgtadm calls TgtAdmin
 * makes and prints `show` output in tgtadm's format, so unit tests run the real TgtAdmin.
 * `restart()` forgets everything, as tgtd does.
 */
export class FakeTgtd implements CommandRunner {
  readonly targets = new Map<number, FakeTarget>();
  readonly accounts = new Map<string, string>();
  readonly calls: string[][] = [];

  restart() {
    this.targets.clear();
    this.accounts.clear();
  }

  async run(_program: string, args: string[]): Promise<CommandResult> {
    this.calls.push(args);
    const opt = (name: string) => {
      const i = args.indexOf(`--${name}`);
      return i >= 0 ? args[i + 1] : undefined;
    };
    const ok = (stdout = ''): CommandResult => ({ stdout, stderr: '', code: 0 });
    const fail = (stderr: string): CommandResult => ({ stdout: '', stderr: `tgtadm: ${stderr}`, code: 22 });
    const mode = opt('mode');
    const op = opt('op');
    const tid = Number(opt('tid'));
    const t = this.targets.get(tid);
    if (mode === 'target') {
      if (op === 'show') return ok(this.show());
      if (op === 'new') {
        if (this.targets.has(tid)) return fail('this target already exists');
        this.targets.set(tid, { tid, iqn: opt('targetname')!, luns: new Map(), acl: [], accounts: [] });
        return ok();
      }
      if (!t) return fail("can't find the target");
      if (op === 'delete') return (this.targets.delete(tid), ok());
      if (op === 'bind') return (t.acl.push(opt('initiator-name')!), ok());
      if (op === 'unbind') return ((t.acl = t.acl.filter((a) => a !== opt('initiator-name'))), ok());
    }
    if (mode === 'logicalunit' && op === 'new') {
      if (!t) return fail("can't find the target");
      t.luns.set(Number(opt('lun')), opt('backing-store')!);
      return ok();
    }
    if (mode === 'account') {
      const user = opt('user')!;
      if (op === 'show') return ok(['Account list:', ...[...this.accounts.keys()].map((u) => `    ${u}`)].join('\n') + '\n');
      if (op === 'new') {
        if (this.accounts.has(user)) return fail('this account already exists');
        this.accounts.set(user, opt('password')!);
        return ok();
      }
      if (!this.accounts.has(user)) return fail("can't find the account");
      if (op === 'delete') {
        this.accounts.delete(user);
        for (const x of this.targets.values()) x.accounts = x.accounts.filter((a) => a !== user);
        return ok();
      }
      if (!t) return fail("can't find the target");
      if (op === 'bind') return (t.accounts.push(user), ok());
      if (op === 'unbind') return ((t.accounts = t.accounts.filter((a) => a !== user)), ok());
    }
    return fail(`unsupported ${args.join(' ')}`);
  }

  private show(): string {
    const out: string[] = [];
    for (const t of [...this.targets.values()].sort((a, b) => a.tid - b.tid)) {
      out.push(`Target ${t.tid}: ${t.iqn}`, '    System information:', '        Driver: iscsi', '    I_T nexus information:', '    LUN information:');
      out.push('        LUN: 0', '            Type: controller', '            Size: 0 MB, Block size: 1', '            Backing store path: None');
      for (const [lun, path] of t.luns) out.push(`        LUN: ${lun}`, '            Type: disk', '            Size: 1074 MB, Block size: 512', `            Backing store path: ${path}`);
      out.push('    Account information:', ...t.accounts.map((a) => `        ${a}`), '    ACL information:', ...t.acl.map((a) => `        ${a}`));
    }
    return out.join('\n') + '\n';
  }
}
