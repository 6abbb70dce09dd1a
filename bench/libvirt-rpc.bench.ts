/**
 * Benchmark: @koala/libvirt RPC throughput vs. virsh, against libvirtd's test driver.
 *
 * Run (from the repo root, libvirtd running):
 *   bash bench/libvirt-rpc.bench.sh
 * which compiles the lib and this file with bench/tsconfig.libvirt-bench.json into
 * node_modules/.cache/koala-libvirt-bench and runs it with plain node.
 * Knobs: LIBVIRT_URI (default test:///default), BENCH_MS (per figure), BENCH_IN_FLIGHT.
 *
 * Prints calls/s for domainGetInfo and connectListAllDomains on ONE connection, sequentially
 * and with N calls in flight, next to `virsh -c test:///default` running the same command in
 * a loop (one process per call, the way shell scripts drive libvirt), and the ratio.
 * Figures only; nothing is asserted.
 */
import { execFileSync } from 'node:child_process';
import { Libvirt } from '@koala/libvirt';

const URI = process.env.LIBVIRT_URI ?? 'test:///default';
const DURATION_MS = Number(process.env.BENCH_MS ?? 2000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 64);

async function rate(fn: () => Promise<unknown>, inFlight: number): Promise<number> {
  let done = 0;
  const end = Date.now() + DURATION_MS;
  const worker = async () => {
    while (Date.now() < end) {
      await fn();
      done++;
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return done / secs;
}

function virshRate(args: string[]): number {
  let done = 0;
  const end = Date.now() + DURATION_MS;
  const t0 = process.hrtime.bigint();
  while (Date.now() < end) {
    execFileSync('virsh', ['-q', '-c', URI, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    done++;
  }
  return done / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const fmt = (n: number) => n.toFixed(0).padStart(9);

async function main(): Promise<void> {
  const lv = await Libvirt.connect({ uri: URI });
  const dom = (await lv.listAllDomains())[0];
  if (!dom) throw new Error(`no domain on ${URI}`);
  console.log(`libvirt RPC benchmark on ${URI}, domain '${dom.name}', ${DURATION_MS} ms per figure, ${IN_FLIGHT} in flight`);
  console.log('operation                  koala seq  koala x' + String(IN_FLIGHT).padEnd(3) + '   virsh loop   seq/virsh  par/virsh');
  const rows: [string, () => Promise<unknown>, string[]][] = [
    ['domainGetInfo', () => lv.getDomainInfo(dom), ['dominfo', dom.name]],
    ['connectListAllDomains', () => lv.listAllDomains(), ['list', '--all']],
  ];
  for (const [name, fn, virshArgs] of rows) {
    const seq = await rate(fn, 1);
    const par = await rate(fn, IN_FLIGHT);
    const virsh = virshRate(virshArgs);
    console.log(`${name.padEnd(24)} ${fmt(seq)}/s ${fmt(par)}/s ${fmt(virsh)}/s ${(seq / virsh).toFixed(1).padStart(10)}x ${(par / virsh).toFixed(1).padStart(9)}x`);
  }
  await lv.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
