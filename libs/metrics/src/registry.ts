/**
 * A small Prometheus registry writing the text exposition format 0.0.4: counters, gauges and
 * histograms (fixed buckets) with labels. prom-client could not be installed when this was
 * written (shared node_modules); the API mirrors its shape so a swap stays local to this lib.
 *
 * Metrics are process-wide (like prom-client's default registry): components that share a
 * process (tests, the scale bench) share the series, told apart by their labels.
 */
export type LabelValues = Readonly<Record<string, string | number>>;

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** HELP text: backslash and line feed escaped. */
export const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
/** Label values: backslash, double quote and line feed escaped. */
export const escapeLabelValue = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** Sample values as Prometheus reads them (Go's ParseFloat): +Inf, -Inf, NaN. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

type MetricType = 'counter' | 'gauge' | 'histogram';

interface MetricOptions {
  name: string;
  help: string;
  labelNames?: readonly string[];
}

abstract class Metric<V> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected readonly series = new Map<string, { labels: string[]; value: V }>();
  abstract readonly type: MetricType;

  constructor(opts: MetricOptions, reserved: readonly string[] = []) {
    if (!METRIC_NAME.test(opts.name)) throw new Error(`invalid metric name "${opts.name}"`);
    const names = opts.labelNames ?? [];
    for (const l of names) {
      if (!LABEL_NAME.test(l) || l.startsWith('__') || reserved.includes(l)) throw new Error(`invalid label name "${l}" on ${opts.name}`);
    }
    if (new Set(names).size !== names.length) throw new Error(`duplicate label names on ${opts.name}`);
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = [...names];
  }

  /** The series of `labels` (exactly the declared label names), created with `init` if new. */
  protected entry(labels: LabelValues | undefined, init: () => V): { labels: string[]; value: V } {
    const given = labels ?? {};
    const keys = Object.keys(given);
    if (keys.length !== this.labelNames.length || keys.some((k) => !this.labelNames.includes(k))) throw new Error(`${this.name} takes labels {${this.labelNames.join(',')}}, got {${keys.join(',')}}`);
    const values = this.labelNames.map((l) => String(given[l]));
    const key = values.join('\u0000');
    let e = this.series.get(key);
    if (!e) {
      e = { labels: values, value: init() };
      this.series.set(key, e);
    }
    return e;
  }

  /** Drops every series (a collector refilling a gauge from scratch). */
  reset(): void {
    this.series.clear();
  }

  protected labelText(values: readonly string[], extra?: [string, string]): string {
    const pairs = this.labelNames.map((l, i) => `${l}="${escapeLabelValue(values[i]!)}"`);
    if (extra) pairs.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
    return pairs.length ? `{${pairs.join(',')}}` : '';
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    // A metric without labels always has its one series (0 until touched), as prom-client does.
    if (this.labelNames.length === 0 && this.series.size === 0) this.entry(undefined, () => this.zero());
    for (const e of this.series.values()) lines.push(...this.samples(e.labels, e.value));
    return lines.join('\n') + '\n';
  }

  protected abstract zero(): V;
  protected abstract samples(labels: string[], value: V): string[];
}

export class Counter extends Metric<number> {
  readonly type = 'counter';
  inc(labels?: LabelValues, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up (got ${by})`);
    this.entry(labels, () => 0).value += by;
  }
  get(labels?: LabelValues): number {
    return this.entry(labels, () => 0).value;
  }
  protected zero() {
    return 0;
  }
  protected samples(labels: string[], v: number) {
    return [`${this.name}${this.labelText(labels)} ${formatValue(v)}`];
  }
}

export class Gauge extends Metric<number> {
  readonly type = 'gauge';
  set(labels: LabelValues | undefined, value: number): void {
    this.entry(labels, () => 0).value = value;
  }
  inc(labels?: LabelValues, by = 1): void {
    this.entry(labels, () => 0).value += by;
  }
  dec(labels?: LabelValues, by = 1): void {
    this.entry(labels, () => 0).value -= by;
  }
  get(labels?: LabelValues): number {
    return this.entry(labels, () => 0).value;
  }
  protected zero() {
    return 0;
  }
  protected samples(labels: string[], v: number) {
    return [`${this.name}${this.labelText(labels)} ${formatValue(v)}`];
  }
}

interface HistogramValue {
  counts: number[];
  sum: number;
  count: number;
}

/** Latency buckets in seconds: 1 ms .. 30 s. */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Histogram extends Metric<HistogramValue> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  constructor(opts: MetricOptions & { buckets?: readonly number[] }) {
    super(opts, ['le']);
    const b = [...(opts.buckets ?? LATENCY_BUCKETS)];
    if (!b.length || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!))) throw new Error(`${opts.name}: buckets must be finite and increasing`);
    this.buckets = b;
  }
  observe(labels: LabelValues | undefined, value: number): void {
    const e = this.entry(labels, () => this.zero()).value;
    // counts are per bucket here and made cumulative when rendered
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) e.counts[i]!++;
    e.sum += value;
    e.count++;
  }
  /** Starts a timer; calling the result observes the seconds elapsed (labels may be added then). */
  startTimer(labels?: LabelValues): (more?: LabelValues) => number {
    const t0 = process.hrtime.bigint();
    return (more) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      this.observe({ ...labels, ...more }, s);
      return s;
    };
  }
  /** Times a promise (or function) and observes its duration with `outcome` ok/error added when the metric declares it. */
  async time<T>(labels: LabelValues | undefined, fn: () => Promise<T>): Promise<T> {
    const done = this.startTimer(labels);
    const withOutcome = this.labelNames.includes('outcome');
    try {
      const r = await fn();
      done(withOutcome ? { outcome: 'ok' } : undefined);
      return r;
    } catch (e) {
      done(withOutcome ? { outcome: 'error' } : undefined);
      throw e;
    }
  }
  get(labels?: LabelValues): { sum: number; count: number } {
    const v = this.entry(labels, () => this.zero()).value;
    return { sum: v.sum, count: v.count };
  }
  protected zero(): HistogramValue {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }
  protected samples(labels: string[], v: HistogramValue) {
    const out: string[] = [];
    let acc = 0;
    this.buckets.forEach((b, i) => {
      acc += v.counts[i]!;
      out.push(`${this.name}_bucket${this.labelText(labels, ['le', formatValue(b)])} ${acc}`);
    });
    out.push(`${this.name}_bucket${this.labelText(labels, ['le', '+Inf'])} ${v.count}`);
    out.push(`${this.name}_sum${this.labelText(labels)} ${formatValue(v.sum)}`);
    out.push(`${this.name}_count${this.labelText(labels)} ${v.count}`);
    return out;
  }
}

/** Refreshes gauges at scrape time (e.g. counts read from the database). */
export type Collector = () => void | Promise<void>;

export class Registry {
  private readonly metrics = new Map<string, Metric<unknown>>();
  private readonly collectors = new Set<Collector>();

  /** Get-or-create: the same name must come back with the same type and label names. */
  private getOrCreate<M extends Metric<unknown>>(type: MetricType, opts: MetricOptions, make: () => M): M {
    const have = this.metrics.get(opts.name);
    if (have) {
      if (have.type !== type || have.labelNames.join(',') !== (opts.labelNames ?? []).join(',')) throw new Error(`metric ${opts.name} is already registered with another type or labels`);
      return have as M;
    }
    const m = make();
    this.metrics.set(m.name, m);
    return m;
  }

  counter(opts: MetricOptions): Counter {
    return this.getOrCreate('counter', opts, () => new Counter(opts));
  }
  gauge(opts: MetricOptions): Gauge {
    return this.getOrCreate('gauge', opts, () => new Gauge(opts));
  }
  histogram(opts: MetricOptions & { buckets?: readonly number[] }): Histogram {
    return this.getOrCreate('histogram', opts, () => new Histogram(opts));
  }

  /** Adds a collector run before each scrape; returns its removal. */
  addCollector(c: Collector): () => void {
    this.collectors.add(c);
    return () => this.collectors.delete(c);
  }

  /** The exposition text. A failing collector leaves its gauges as they were (and never fails the scrape). */
  async metricsText(): Promise<string> {
    await Promise.all(
      [...this.collectors].map((c) =>
        Promise.resolve()
          .then(c)
          .catch(() => undefined),
      ),
    );
    return [...this.metrics.values()].map((m) => m.render()).join('');
  }

  clear(): void {
    this.metrics.clear();
    this.collectors.clear();
  }
}

/** The process-wide registry every component records into. */
export const metrics = new Registry();
