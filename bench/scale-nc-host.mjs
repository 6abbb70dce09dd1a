// One process hosting several simulated node controllers (the compiled NC, `npm run build`),
// each on its own libvirt test-driver host. Started by test/support/scale-harness.ts:
//   SCALE_NODES='[{"name":"z-n001","uri":"test:///.../host-1.xml"},...]' node bench/scale-nc-host.mjs
// with the KOALA_* environment of the zone. Prints `up <name>` per started NC, `ready` once all
// are, and stops them all on SIGTERM.
import 'reflect-metadata';

const dist = new URL('../dist/', import.meta.url);
const { startDaemon } = await import(new URL('libs/runtime/src/index.js', dist).href);
const { loadConfig } = await import(new URL('libs/config/src/index.js', dist).href);
const { nodeModule } = await import(new URL('apps/node-controller/src/node.module.js', dist).href);

const nodes = JSON.parse(process.env.SCALE_NODES ?? '[]');
const apps = [];
let stopping = false;

async function stop(code) {
  if (stopping) return;
  stopping = true;
  for (let i = 0; i < apps.length; i += 20) await Promise.all(apps.slice(i, i + 20).map((a) => a.close().catch(() => undefined)));
  process.exit(code);
}
process.once('SIGTERM', () => void stop(0));
process.once('SIGINT', () => void stop(0));

try {
  // waves: every NC opens a NATS and a libvirt connection and downloads nothing until a launch
  const WAVE = 10;
  for (let i = 0; i < nodes.length; i += WAVE) {
    await Promise.all(
      nodes.slice(i, i + WAVE).map(async (n) => {
        const config = loadConfig({ ...process.env, KOALA_NODE_NAME: n.name, KOALA_LIBVIRT_URI: n.uri });
        const { app } = await startDaemon('node-controller', (ctx) => nodeModule(ctx), { zoned: true, config });
        apps.push(app);
        process.stdout.write(`up ${n.name}\n`);
      }),
    );
  }
  process.stdout.write('ready\n');
} catch (err) {
  process.stderr.write(`nc host failed: ${err?.stack ?? err}\n`);
  await stop(1);
}
