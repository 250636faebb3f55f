// A string-keyed map for the subscriptions of one connection. Most connections hold one channel: a Map and its
// hash table cost ~180 bytes per connection before any entry; this holds the first entry in two fields and makes a
// Map only when a second key arrives (it keeps the Map from then on). Insertion order is kept, as a Map keeps it.
export class SmallMap<V> {
  private key: string | undefined = undefined;
  private value: V | undefined = undefined;
  private map: Map<string, V> | undefined = undefined;

  get size(): number {
    if (this.map !== undefined) return this.map.size;
    return this.key === undefined ? 0 : 1;
  }

  has(key: string): boolean {
    if (this.map !== undefined) return this.map.has(key);
    return this.key === key;
  }

  get(key: string): V | undefined {
    if (this.map !== undefined) return this.map.get(key);
    return this.key === key ? this.value : undefined;
  }

  set(key: string, value: V): this {
    if (this.map !== undefined) {
      this.map.set(key, value);
    } else if (this.key === undefined || this.key === key) {
      this.key = key;
      this.value = value;
    } else {
      this.map = new Map([[this.key, this.value as V]]);
      this.map.set(key, value);
      this.key = undefined;
      this.value = undefined;
    }
    return this;
  }

  delete(key: string): boolean {
    if (this.map !== undefined) return this.map.delete(key);
    if (this.key !== key) return false;
    this.key = undefined;
    this.value = undefined;
    return true;
  }

  /** The values in insertion order; a snapshot, so the map may change while the caller walks it. */
  values(): V[] {
    if (this.map !== undefined) return [...this.map.values()];
    return this.key === undefined ? [] : [this.value as V];
  }
}
