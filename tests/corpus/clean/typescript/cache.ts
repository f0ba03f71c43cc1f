/**
 * A small LRU cache with per-entry expiry, used by the API client.
 */

export interface CacheOptions {
  maxEntries: number;
  ttlMs?: number;
  now?: () => number;
}

interface Entry<V> {
  value: V;
  expiresAt: number | null;
}

export class LruCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly maxEntries: number;
  private readonly ttlMs: number | undefined;
  private readonly now: () => number;

  constructor({ maxEntries, ttlMs, now = Date.now }: CacheOptions) {
    if (maxEntries <= 0) {
      throw new RangeError(`maxEntries must be positive, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
    this.ttlMs = ttlMs;
    this.now = now;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      return undefined;
    }
    if (entry.expiresAt !== null && entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    // Re-insert so iteration order tracks recency.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: K, value: V): this {
    const expiresAt = this.ttlMs == null ? null : this.now() + this.ttlMs;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) {
        break;
      }
      this.entries.delete(oldest.value);
    }
    return this;
  }

  async getOrLoad(key: K, load: (key: K) => Promise<V>): Promise<V> {
    const cached = this.get(key);
    if (cached !== undefined) {
      return cached;
    }
    const value = await load(key);
    this.set(key, value);
    return value;
  }

  clear(): void {
    this.entries.clear();
  }
}

export function isCacheOptions(value: unknown): value is CacheOptions {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as CacheOptions).maxEntries === 'number'
  );
}
