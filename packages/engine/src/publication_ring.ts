// Fixed-capacity ring of a channel's newest publications for the memory engine (O(1) append, index by age).
import type { Publication } from './broker';

export class PublicationRing {
  private items: Publication[] = [];
  /** Index of the oldest publication in `items`. */
  private head = 0;

  constructor(private capacity: number) {}

  get size(): number {
    return this.items.length;
  }

  push(pub: Publication): void {
    if (this.items.length < this.capacity) {
      this.items.push(pub);
      return;
    }
    this.items[this.head] = pub;
    this.head = (this.head + 1) % this.capacity;
  }

  /** The i-th oldest publication, 0 ≤ i < size. */
  at(i: number): Publication {
    return this.items[(this.head + i) % this.items.length];
  }

  /** Changes the capacity and keeps the newest publications that still fit. */
  resize(capacity: number): void {
    if (capacity === this.capacity) return;
    const keep = Math.min(this.items.length, capacity);
    const items: Publication[] = [];
    for (let i = this.items.length - keep; i < this.items.length; i++) items.push(this.at(i));
    this.items = items;
    this.head = 0;
    this.capacity = capacity;
  }
}
