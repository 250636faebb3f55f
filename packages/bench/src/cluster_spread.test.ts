import { channelSlotKey, maxOverMin, ownerIndex, spreadOf, type PrimaryPlacement } from './cluster_spread';
import type { ProcUsage } from './procstat';
// The bench does not depend on the engine; the test checks that both name a channel's keys the same way.
import { DEFAULT_PREFIX, redisPubSubChannel } from '../../engine/src/redis_keys';

const usage = (name: string, cpuSeconds: number): ProcUsage => ({ name, side: 'sut', cpu: 0, cpuSeconds, rssMiB: 0 });

describe('spread over Redis Cluster primaries', () => {
  it('max over min, and what a primary with nothing gives', () => {
    expect(maxOverMin([300, 350, 350])).toBeCloseTo(350 / 300);
    expect(maxOverMin([5])).toBe(1);
    expect(maxOverMin([0, 4])).toBe(Infinity);
    expect(maxOverMin([0, 0])).toBeNaN();
    expect(maxOverMin([])).toBeNaN();
  });

  it('finds the primary whose inclusive slot ranges hold a slot', () => {
    const primaries = [{ slots: [[0, 5460]] as [number, number][] }, { slots: [[5461, 10922], [16000, 16000]] as [number, number][] }, { slots: [[10923, 16383]] as [number, number][] }];
    expect(ownerIndex(0, primaries)).toBe(0);
    expect(ownerIndex(5460, primaries)).toBe(0);
    expect(ownerIndex(5461, primaries)).toBe(1);
    expect(ownerIndex(16000, primaries)).toBe(1);
    expect(ownerIndex(16383, primaries)).toBe(2);
    expect(ownerIndex(16384, primaries)).toBe(-1);
  });

  it('joins channels per primary with its CPU per 1,000 publications and its share', () => {
    const placement: PrimaryPlacement[] = [
      { name: 'redis1', port: 1, slots: 5461, channels: 320, subscribed: 320 },
      { name: 'redis2', port: 2, slots: 5462, channels: 340, subscribed: 340 },
      { name: 'redis3', port: 3, slots: 5461, channels: 340, subscribed: 340 },
    ];
    const spread = spreadOf(placement, [
      { usage: [usage('gw1', 9), usage('redis1', 0.1), usage('redis2', 0.3), usage('redis3', 0.2)], published: 1000 },
      { usage: [usage('gw1', 9), usage('redis1', 0.3), usage('redis2', 0.5), usage('redis3', 0.6)], published: 3000 },
    ]);
    expect(spread).toMatchObject({ steps: 2, published: 4000 });
    expect(spread.primaries.map((p) => p.cpuSeconds)).toEqual([0.4, 0.8, 0.8]);
    expect(spread.primaries.map((p) => p.cpuPer1000)).toEqual([0.1, 0.2, 0.2]);
    expect(spread.primaries.map((p) => p.cpuShare)).toEqual([0.2, 0.4, 0.4]);
    expect(spread.channelsMaxMin).toBeCloseTo(340 / 320);
    expect(spread.cpuMaxMin).toBeCloseTo(2);
  });

  it('names the hash-tagged key the engine puts every key of a channel under', () => {
    for (const channel of ['bench:m7', 'a{b}c', 'ünï:cödé']) expect(channelSlotKey(channel)).toBe(redisPubSubChannel(channel, DEFAULT_PREFIX));
  });
});
