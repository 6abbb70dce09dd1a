import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KoalaConfig } from '@koala/config';
import { CLC_ENTRY } from '../supervisor/components.js';
import { allInOneNet } from '../supervisor/node-host.js';

export interface SshArgs {
  instanceId: string;
  identity?: string;
  user: string;
  command: string[];
}

const USAGE = 'usage: koala ssh INSTANCE-ID [-i KEYFILE] [-l USER] [-- COMMAND...]\n';

/** Parses `koala ssh` arguments (pure); a string is the usage error to print. */
export function parseSshArgs(args: string[]): SshArgs | string {
  let instanceId: string | undefined;
  let identity: string | undefined;
  let user = 'root';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return instanceId ? { instanceId, identity, user, command: args.slice(i + 1) } : USAGE;
    if (a === '-i' || a === '-l') {
      const v = args[++i];
      if (!v) return USAGE;
      if (a === '-i') identity = v;
      else if (/^[a-z_][a-z0-9_-]{0,31}$/.test(v)) user = v;
      else return `koala ssh: bad user name ${JSON.stringify(v)}\n`;
    } else if (!instanceId && /^i-[0-9a-f]{8,17}$/.test(a)) instanceId = a;
    else return instanceId ? USAGE : `koala ssh: ${JSON.stringify(a)} is not an instance id\n${USAGE}`;
  }
  return instanceId ? { instanceId, identity, user, command: [] } : USAGE;
}

/** The ssh command line, run inside the node's network namespace (where guests are reachable). */
export function sshArgv(netns: string, home: string, ip: string, a: SshArgs): string[] {
  return [
    'netns',
    'exec',
    netns,
    'ssh',
    ...(a.identity ? ['-i', a.identity, '-o', 'IdentitiesOnly=yes'] : []),
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    `UserKnownHostsFile=${join(home, 'known_hosts')}`,
    // Private IPs are reused after termination: remember host keys per instance, not per address.
    '-o',
    `HostKeyAlias=${a.instanceId}`,
    '-o',
    'ConnectTimeout=15',
    `${a.user}@${ip}`,
    ...(a.command.length ? ['--', ...a.command] : []),
  ];
}

/**
 * `koala ssh INSTANCE-ID [-i KEYFILE] [-- cmd...]`: looks the instance's private IP up in the
 * CLC's database (`instance-address`, like the other admin commands) and runs ssh in the node's
 * network namespace. The instance's security groups must allow TCP 22 (as in EC2).
 */
export function ssh(config: KoalaConfig, args: string[]): number {
  const a = parseSshArgs(args);
  if (typeof a === 'string') {
    process.stderr.write(a);
    return 64;
  }
  if (a.identity && !existsSync(a.identity)) {
    process.stderr.write(`koala ssh: no key file ${a.identity}\n`);
    return 66;
  }
  const netns = config.nodeNetns ?? allInOneNet(config)?.netns;
  if (!netns) {
    process.stderr.write('koala ssh: guests have no network here (KOALA_AIO_NETNS=none and no KOALA_NODE_NETNS)\n');
    return 1;
  }
  const r = spawnSync(process.execPath, [CLC_ENTRY, 'instance-address', a.instanceId], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  if (r.status !== 0) return r.status ?? 1;
  const [, state, , , ip] = r.stdout.trim().split('\t');
  if (state !== 'running' || !ip || ip === '-') {
    process.stderr.write(`koala ssh: instance ${a.instanceId} is ${state ?? 'unknown'}${ip && ip !== '-' ? '' : ' and has no private address'}\n`);
    return 1;
  }
  const s = spawnSync('ip', sshArgv(netns, config.home, ip, a), { stdio: 'inherit' });
  if (s.error) {
    process.stderr.write(`koala ssh: ${s.error.message}\n`);
    return 1;
  }
  return s.status ?? 1;
}
