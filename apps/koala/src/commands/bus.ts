import { readFileSync } from 'node:fs';
import type { KoalaConfig } from '@koala/config';
import { busUser, type BusPrincipal } from '@koala/contracts';
import { BusSupervisor, busEnabled, busFiles, writeBusConfig } from '../supervisor/cloud-bus.js';

/**
 * `koala bus add-node ZONE NODE`: an NC user for a node on another host (its own node's
 * subjects only); prints the env file to copy to that host. A running bus reloads its
 * configuration. `koala bus users`: the users and their env files.
 */
export async function bus(config: KoalaConfig, args: string[]): Promise<number> {
  if (!busEnabled(config)) {
    process.stderr.write('koala bus: KOALA_NATS_PORT is 0 (no nats-server of this cloud)\n');
    return 64;
  }
  const [sub, zone, node] = args;
  if (sub === 'add-node' && zone && node) {
    try {
      writeBusConfig(config, [{ zone, node }]);
    } catch (e) {
      process.stderr.write(`koala bus: ${(e as Error).message}\n`);
      return 64;
    }
    const pid = new BusSupervisor(config).running();
    if (pid) process.kill(pid, 'SIGHUP');
    const user = busUser({ kind: 'nc', zone, node });
    process.stdout.write(
      `user ${user}: copy ${busFiles(config).env(user)} to the node host (root only, 0600) and point KOALA_NATS_URL at this host${pid ? '' : '; the bus picks it up at the next `koala up`'}\n`,
    );
    return 0;
  }
  if (sub === 'users') {
    writeBusConfig(config);
    const { users } = JSON.parse(readFileSync(busFiles(config).users, 'utf8')) as { users: { principal: BusPrincipal }[] };
    for (const u of users) process.stdout.write(`${busUser(u.principal).padEnd(24)} ${busFiles(config).env(busUser(u.principal))}\n`);
    return 0;
  }
  process.stderr.write('usage: koala bus add-node ZONE NODE | users\n');
  return 64;
}
