/**
 * Byte progress for long copies (`koala image import`): on a terminal one redrawn line
 * `label [#####-----] 12.0/48.0 MiB  25%  80.1 MB/s`; otherwise plain lines at each 25% and at
 * the end, so CI logs stay readable.
 */
const MiB = 1024 * 1024;

export class ProgressBar {
  private readonly started: number;
  private lastDraw = 0;
  private lastQuarter = -1;
  private finished = false;

  constructor(
    private readonly write: (s: string) => void,
    private readonly label: string,
    private readonly total: number,
    private readonly tty: boolean,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.started = this.now();
  }

  /** `bytes` done so far (throttled: at most 10 redraws a second). */
  update(bytes: number): void {
    if (this.finished) return;
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw < 100 && bytes < this.total) return;
      this.lastDraw = t;
      this.write(`\r${this.line(bytes, t, true)}\x1b[K`);
      return;
    }
    const quarter = this.total > 0 ? Math.floor((bytes / this.total) * 4) : 4;
    if (quarter > this.lastQuarter && quarter < 4) {
      this.lastQuarter = quarter;
      this.write(`${this.line(bytes, t, false)}\n`);
    }
  }

  /** Final line (100% or what was done), newline-terminated. */
  done(bytes = this.total, note = ''): void {
    if (this.finished) return;
    this.finished = true;
    const line = this.line(bytes, this.now(), this.tty) + (note ? `  ${note}` : '');
    this.write(this.tty ? `\r${line}\x1b[K\n` : `${line}\n`);
  }

  line(bytes: number, t: number, bar: boolean): string {
    const frac = this.total > 0 ? Math.min(1, bytes / this.total) : 1;
    const secs = Math.max((t - this.started) / 1000, 0.001);
    const rate = bytes / 1e6 / secs;
    const width = 24;
    const filled = Math.round(frac * width);
    const b = bar ? ` [${'#'.repeat(filled)}${'-'.repeat(width - filled)}]` : '';
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    return `${this.label}${b} ${(bytes / MiB).toFixed(1)}/${(this.total / MiB).toFixed(1)} MiB ${pct} ${rate.toFixed(1)} MB/s`;
  }
}
