/** Terminal output helpers: a spinner line on a TTY, plain lines otherwise (CI logs). */
const tty = process.stdout.isTTY;
const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class Progress {
  private frame = 0;
  private timer?: NodeJS.Timeout;
  private text = '';

  step(text: string) {
    this.done();
    this.text = text;
    if (!tty) {
      process.stdout.write(`... ${text}\n`);
      return;
    }
    this.timer = setInterval(() => {
      process.stdout.write(`\r${frames[this.frame++ % frames.length]} ${this.text}\x1b[K`);
    }, 80);
  }

  update(text: string) {
    this.text = text;
  }

  done(result = 'ok') {
    if (!this.timer && !this.text) return;
    clearInterval(this.timer);
    this.timer = undefined;
    if (tty) process.stdout.write(`\r✔ ${this.text} \x1b[2m${result}\x1b[0m\x1b[K\n`);
    else process.stdout.write(`    ${result}\n`);
    this.text = '';
  }

  fail(result: string) {
    clearInterval(this.timer);
    this.timer = undefined;
    process.stdout.write(`${tty ? '\r✘ ' : '    FAILED: '}${this.text} ${result}\x1b[K\n`);
    this.text = '';
  }
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (c ?? '').padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
