import type { CommandRunner } from './command-runner.js';

/** A target as `tgtadm --mode target --op show` describes it. */
export interface TgtTarget {
  tid: number;
  iqn: string;
  /** Data LUNs (LUN 0, the controller, is left out). */
  luns: { lun: number; backingStore: string; sizeMB: number }[];
  accounts: string[];
  acl: string[];
  /** Initiators logged in right now (I_T nexus information). */
  sessions: string[];
}

export class TgtError extends Error {
  constructor(
    readonly args: string[],
    readonly exitCode: number,
    readonly stderr: string,
  ) {
    super(`tgtadm ${redact(args).join(' ')} failed (${exitCode}): ${stderr.trim()}`);
    this.name = 'TgtError';
  }

  get alreadyExists() {
    return /already exists/i.test(this.stderr);
  }

  get notFound() {
    return /can't find|not found|no such/i.test(this.stderr);
  }
}

/** Never let a CHAP password reach an error message or a log line. */
function redact(args: string[]): string[] {
  return args.map((a, i) => (args[i - 1] === '--password' ? '[redacted]' : a));
}

/** Parses `tgtadm --lld iscsi --mode target --op show`. */
export function parseTargets(text: string): TgtTarget[] {
  const targets: TgtTarget[] = [];
  let current: TgtTarget | undefined;
  let section = '';
  let lun: { lun: number; type?: string; backingStore: string; sizeMB: number } | undefined;
  const flushLun = () => {
    if (current && lun && lun.type === 'disk') current.luns.push({ lun: lun.lun, backingStore: lun.backingStore, sizeMB: lun.sizeMB });
    lun = undefined;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    const head = /^Target (\d+): (\S+)$/.exec(line);
    if (head) {
      flushLun();
      current = { tid: Number(head[1]), iqn: head[2], luns: [], accounts: [], acl: [], sessions: [] };
      targets.push(current);
      section = '';
      continue;
    }
    if (!current) continue;
    const t = line.trim();
    if (/^(System|I_T nexus|LUN|Account|ACL) information:$/.test(t)) {
      flushLun();
      section = t.split(' ')[0];
      continue;
    }
    if (section === 'LUN') {
      const m = /^LUN: (\d+)$/.exec(t);
      if (m) {
        flushLun();
        lun = { lun: Number(m[1]), backingStore: '', sizeMB: 0 };
      } else if (lun) {
        const kv = /^([^:]+):\s*(.*)$/.exec(t);
        if (kv?.[1] === 'Type') lun.type = kv[2];
        if (kv?.[1] === 'Backing store path') lun.backingStore = kv[2];
        if (kv?.[1] === 'Size') lun.sizeMB = Number(/^(\d+)/.exec(kv[2])?.[1] ?? 0);
      }
    } else if (section === 'Account' && t) current.accounts.push(t);
    else if (section === 'ACL' && t) current.acl.push(t);
    else if (section === 'I_T') {
      const m = /^Initiator: (\S+)/.exec(t);
      if (m) current.sessions.push(m[1]);
    }
  }
  flushLun();
  return targets;
}

/**
 * A thin, typed wrapper over `tgtadm` (tgt's admin tool). tgtd keeps its configuration in
 * memory only, so callers (the SC) re-create targets from their own records after a restart.
 * Known limit: tgtadm takes CHAP passwords as arguments, so they are briefly visible in the
 * process table of the storage host (root-only hosts; never logged by us).
 */
export class TgtAdmin {
  constructor(
    private readonly runner: CommandRunner,
    private readonly program = 'tgtadm',
  ) {}

  private async tgtadm(args: string[]): Promise<string> {
    const full = ['--lld', 'iscsi', ...args];
    const r = await this.runner.run(this.program, full);
    if (r.code !== 0) throw new TgtError(full, r.code, r.stderr || r.stdout);
    return r.stdout;
  }

  async listTargets(): Promise<TgtTarget[]> {
    return parseTargets(await this.tgtadm(['--mode', 'target', '--op', 'show']));
  }

  async listAccounts(): Promise<string[]> {
    const out = await this.tgtadm(['--mode', 'account', '--op', 'show']);
    return out
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .filter(Boolean);
  }

  /**
   * Creates a target with the lowest free tid; retries when another process takes it first.
   * `known`: a listing the caller just read (saves the first read).
   */
  async createTarget(iqn: string, known?: readonly TgtTarget[]): Promise<number> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const used = new Set((attempt === 0 && known ? known : await this.listTargets()).map((t) => t.tid));
      let tid = 1;
      while (used.has(tid)) tid++;
      try {
        await this.tgtadm(['--mode', 'target', '--op', 'new', '--tid', String(tid), '--targetname', iqn]);
        return tid;
      } catch (e) {
        if (!(e instanceof TgtError && e.alreadyExists)) throw e;
      }
    }
    throw new Error(`could not find a free tid for ${iqn}`);
  }

  async addLun(tid: number, lun: number, backingStore: string): Promise<void> {
    await this.tgtadm(['--mode', 'logicalunit', '--op', 'new', '--tid', String(tid), '--lun', String(lun), '--backing-store', backingStore]);
  }

  async bindInitiatorName(tid: number, initiatorIqn: string): Promise<void> {
    await this.tgtadm(['--mode', 'target', '--op', 'bind', '--tid', String(tid), '--initiator-name', initiatorIqn]);
  }

  async unbindInitiatorName(tid: number, initiatorIqn: string): Promise<void> {
    await this.tgtadm(['--mode', 'target', '--op', 'unbind', '--tid', String(tid), '--initiator-name', initiatorIqn]);
  }

  async createAccount(user: string, password: string): Promise<void> {
    await this.tgtadm(['--mode', 'account', '--op', 'new', '--user', user, '--password', password]);
  }

  async bindAccount(tid: number, user: string): Promise<void> {
    await this.tgtadm(['--mode', 'account', '--op', 'bind', '--tid', String(tid), '--user', user]);
  }

  async unbindAccount(tid: number, user: string): Promise<void> {
    await this.tgtadm(['--mode', 'account', '--op', 'unbind', '--tid', String(tid), '--user', user]);
  }

  async deleteAccount(user: string): Promise<void> {
    await this.tgtadm(['--mode', 'account', '--op', 'delete', '--user', user]);
  }

  /** Deletes a target even with sessions logged in (`--force`): used on detach and clean-up. */
  async deleteTarget(tid: number): Promise<void> {
    await this.tgtadm(['--mode', 'target', '--op', 'delete', '--force', '--tid', String(tid)]);
  }
}
