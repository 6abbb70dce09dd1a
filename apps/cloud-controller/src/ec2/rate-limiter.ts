/**
 * The request rate limit per access key: a token bucket each (`rate` tokens a second, at most
 * `burst`), as EC2 throttles per account and action class. Pure over the time it is given
 * (monotonic milliseconds), so the spec drives it with a fake clock.
 *
 * Memory is bounded: a bucket idle long enough to have refilled is the same as no bucket and is
 * dropped by the sweep that runs when the map holds `maxKeys`; if that is not enough (more than
 * `maxKeys` keys busy at once), the least recently used buckets go (those keys start full again).
 * Only authenticated keys get a bucket, so forged key ids cannot grow the map.
 */
import { Inject, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Takes one token of `key`'s bucket: true when there was one (the request may go on). */
  take(key: string, nowMs: number): boolean {
    const b = this.buckets.get(key);
    let tokens = this.burst;
    if (b) {
      tokens = Math.min(this.burst, b.tokens + (Math.max(0, nowMs - b.at) * this.rate) / 1000);
      this.buckets.delete(key); // re-inserted below: the map stays in least-recently-used order
    } else if (this.buckets.size >= this.maxKeys) this.evict(nowMs);
    const ok = tokens >= 1;
    this.buckets.set(key, { tokens: ok ? tokens - 1 : tokens, at: nowMs });
    return ok;
  }

  /** Buckets held (tests, metrics). */
  get size(): number {
    return this.buckets.size;
  }

  private evict(nowMs: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + (Math.max(0, nowMs - b.at) * this.rate) / 1000 >= this.burst) this.buckets.delete(k);
    // down to 90% so that the next sweeps are not one per new key
    for (const k of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys * 0.9) break;
      this.buckets.delete(k);
    }
  }
}

/** KOALA_API_RATE / KOALA_API_BURST per access key, in this CLC process. */
@Injectable()
export class RequestRateLimiter {
  private readonly buckets: TokenBuckets;

  constructor(@Inject(KOALA_CONFIG) config: Pick<KoalaConfig, 'apiRate' | 'apiBurst'>) {
    this.buckets = new TokenBuckets(config.apiRate, config.apiBurst);
  }

  allow(accessKeyId: string): boolean {
    return this.buckets.take(accessKeyId, performance.now());
  }
}
