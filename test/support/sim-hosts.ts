/**
 * Simulated hosts on libvirt's test driver: each node gets its own `test:///<dir>/host-K.xml`
 * (its own cores and memory, and — unlike the shared `test:///default` — its own private
 * domains and pools, gone when its connection closes). libvirtd (root) reads the file.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SimHost {
  cores: number;
  memoryMiB: number;
}

/** Writes host K's description under `dir` and returns its URI. */
export function simHostUri(dir: string, k: number | string, host: SimHost): string {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  const file = join(dir, `host-${k}.xml`);
  writeFileSync(
    file,
    `<node>\n  <cpu><mhz>2000</mhz><model>x86_64</model><active>${host.cores}</active><max>${host.cores}</max><nodes>1</nodes><sockets>1</sockets><cores>${host.cores}</cores><threads>1</threads></cpu>\n  <memory>${host.memoryMiB * 1024}</memory>\n</node>\n`,
    { mode: 0o644 },
  );
  return `test://${file}`;
}
