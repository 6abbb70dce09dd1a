import { ProgressBar } from './progress-bar.js';

describe('ProgressBar', () => {
  it('plain lines at each quarter and a final line when not a terminal', () => {
    let t = 0;
    const out: string[] = [];
    const bar = new ProgressBar(
      (s) => out.push(s),
      'disk',
      4 * 1024 * 1024,
      false,
      () => t,
    );
    for (let mb = 0; mb <= 4; mb++) {
      t = mb * 1000;
      bar.update(mb * 1024 * 1024);
    }
    bar.done(4 * 1024 * 1024, 'imported as emi-0123456789abcdef0');
    expect(out).toEqual([
      'disk 0.0/4.0 MiB   0% 0.0 MB/s\n',
      'disk 1.0/4.0 MiB  25% 1.0 MB/s\n',
      'disk 2.0/4.0 MiB  50% 1.0 MB/s\n',
      'disk 3.0/4.0 MiB  75% 1.0 MB/s\n',
      'disk 4.0/4.0 MiB 100% 1.0 MB/s  imported as emi-0123456789abcdef0\n',
    ]);
  });
  it('redraws one line with a bar on a terminal', () => {
    let t = 0;
    const out: string[] = [];
    const bar = new ProgressBar(
      (s) => out.push(s),
      'k',
      2_000_000,
      true,
      () => t,
    );
    t = 500;
    bar.update(1_000_000);
    t = 520;
    bar.update(1_100_000); // throttled
    t = 1000;
    bar.done(2_000_000);
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(/^\rk \[#{12}-{12}\] 1\.0\/1\.9 MiB  50% 2\.0 MB\/s\x1b\[K$/);
    expect(out[1]).toMatch(/^\rk \[#{24}\] 1\.9\/1\.9 MiB 100% 2\.0 MB\/s\x1b\[K\n$/);
  });
});
