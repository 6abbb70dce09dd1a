import { join } from 'node:path';
import type { KoalaConfig } from './schema.js';

/** Where things live under $KOALA_HOME. One place, so the CLI and the daemons agree. */
export function koalaPaths(home: KoalaConfig['home']) {
  return {
    home,
    logs: join(home, 'log'),
    run: join(home, 'run'),
    images: join(home, 'images'),
    imageStore: join(home, 'image-store'),
    masterKey: join(home, 'master.key'),
    adminEnv: join(home, 'admin.env'),
    /** The all-in-one cloud's nats-server: config, users, env files (root only), JetStream store. */
    bus: join(home, 'nats'),
    logFile: (component: string) => join(home, 'log', `${component}.log`),
    pidFile: (component: string) => join(home, 'run', `${component}.pid`),
  };
}
