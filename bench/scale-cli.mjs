// `npm run bench:scale -- --nodes N --instances M [--concurrency C] [--json FILE] [--compare-moto]
//   [--heartbeat-ms MS] [--nodes-per-process K] [--node-cores CORES]`: builds (the bench runs the compiled components),
// then runs bench/scale-cloud.bench.ts through jest with BENCH_* set.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const flags = { '--nodes': 'BENCH_NODES', '--instances': 'BENCH_INSTANCES', '--concurrency': 'BENCH_CONCURRENCY', '--json': 'BENCH_JSON', '--heartbeat-ms': 'BENCH_HEARTBEAT_MS', '--nodes-per-process': 'BENCH_NODES_PER_PROCESS', '--node-cores': 'BENCH_NODE_CORES' };
const env = { ...process.env };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const [flag, inline] = args[i].split('=', 2);
  if (flag === '--compare-moto') env.BENCH_COMPARE_MOTO = '1';
  else if (flags[flag]) {
    const v = inline ?? args[++i];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    if (flag !== '--json' && !/^[1-9]\d*$/.test(v)) throw new Error(`${flag} takes a positive integer, got "${v}"`);
    env[flags[flag]] = flag === '--json' ? resolve(v) : v;
  } else {
    process.stderr.write(`unknown option ${args[i]}\nusage: npm run bench:scale -- --nodes N --instances M [--concurrency C] [--json FILE] [--compare-moto] [--heartbeat-ms MS] [--nodes-per-process K] [--node-cores CORES]\n`);
    process.exit(64);
  }
}
const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --experimental-vm-modules`.trim();
const r = spawnSync('npx', ['jest', '-c', 'bench/scale-jest.config.js', 'bench/scale-cloud.bench.ts'], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
