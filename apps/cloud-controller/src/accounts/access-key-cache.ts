/**
 * Resolved access keys, kept briefly so that a request does not cost a database round trip (two
 * with TypeORM's relation join) to find its key. Entries go when the key or any account changes:
 * `forget(id)` / `forgetAll()`, called for this process's own changes and for every other
 * process's changes announced by the database (see KeyChangeListener). While nobody listens for
 * those announcements (`enabled` false) nothing is cached. `ttlMs` bounds the life of an entry
 * even so.
 *
 * A lookup that started before an invalidation may finish after it with the old row; `begin()`
 * returns a generation and `put` drops a result whose generation is outdated, so a deactivated
 * key never comes back into the cache from a read that raced its deactivation.
 */
export class AccessKeyCache<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();
  private generation = 0;
  private listening = false;

  constructor(
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 10_000,
  ) {}

  get enabled(): boolean {
    return this.listening;
  }

  /** Caching on (changes are being announced) or off (and emptied). */
  setEnabled(on: boolean): void {
    this.listening = on;
    this.forgetAll();
  }

  get(id: string, nowMs: number): T | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (e.until <= nowMs) {
      this.entries.delete(id);
      return undefined;
    }
    return e.value;
  }

  /** The generation to hand to `put` after reading the key from the database. */
  begin(): number {
    return this.generation;
  }

  put(id: string, value: T, generation: number, nowMs: number): void {
    if (!this.listening || generation !== this.generation) return;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(id, { value, until: nowMs + this.ttlMs });
  }

  forget(id: string): void {
    this.generation++;
    this.entries.delete(id);
  }

  forgetAll(): void {
    this.generation++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
