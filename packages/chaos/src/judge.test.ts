import { deliveryProblems, failoverProblems, judgeAfterFailovers, judgeDeliveries, newLog, onSubscribed, type Acked, type SubscriberLog } from './judge';

const acked = (channel: string, offsets: number[]): Acked[] => offsets.map((offset) => ({ channel, offset, tag: offset * 10 }));

function logOf(channel: string, startedAt: number, delivered: number[], tags = delivered.map((o) => o * 10)): SubscriberLog {
  const log = newLog(channel);
  onSubscribed(log, { offset: startedAt, epoch: 'e1' }, false);
  log.offsets.push(...delivered);
  log.tags.push(...tags);
  return log;
}

describe('judgeDeliveries', () => {
  it('counts a perfect run as perfect', () => {
    const c = judgeDeliveries(acked('a', [1, 2, 3]), [logOf('a', 0, [1, 2, 3]), logOf('a', 1, [2, 3])]);
    expect(c).toMatchObject({ owed: 5, delivered: 5, missing: 0, duplicates: 0, outOfOrder: 0, wrongData: 0 });
    expect(deliveryProblems(c)).toEqual([]);
  });

  it('finds a missing delivery', () => {
    const c = judgeDeliveries(acked('a', [1, 2, 3]), [logOf('a', 0, [1, 3])]);
    expect(c).toMatchObject({ owed: 3, delivered: 2, missing: 1 });
    expect(deliveryProblems(c)).toEqual(['1 owed deliveries missing']);
  });

  it('finds duplicates and reordering', () => {
    const c = judgeDeliveries(acked('a', [1, 2, 3]), [logOf('a', 0, [1, 2, 2, 3]), logOf('a', 0, [2, 1, 3])]);
    expect(c.duplicates).toBe(1);
    expect(c.outOfOrder).toBe(2);
    expect(deliveryProblems(c)).toHaveLength(2);
  });

  it('finds a delivery whose offset was acknowledged for another publication', () => {
    const c = judgeDeliveries(acked('a', [1, 2]), [logOf('a', 0, [1, 2], [10, 99])]);
    expect(c.wrongData).toBe(1);
    expect(deliveryProblems(c)).toEqual([expect.stringContaining('another publication')]);
  });

  it('owes nothing from before the subscribe, and nothing on other channels', () => {
    const c = judgeDeliveries([...acked('a', [1, 2, 3]), ...acked('b', [1])], [logOf('a', 2, [3])]);
    expect(c).toMatchObject({ owed: 1, delivered: 1, missing: 0 });
  });

  it('excuses exactly the range a resubscribe said it could not recover', () => {
    const log = logOf('a', 0, [1, 2]);
    onSubscribed(log, { offset: 5, epoch: 'e1' }, false);
    log.offsets.push(6);
    log.tags.push(60);
    const c = judgeDeliveries(acked('a', [1, 2, 3, 4, 5, 6, 7]), [log]);
    expect(c).toMatchObject({ excused: 3, owed: 4, delivered: 3, missing: 1 });
  });

  it('counts recoveries, and a new epoch as a problem', () => {
    const log = logOf('a', 0, [1]);
    onSubscribed(log, { offset: 1, epoch: 'e1' }, true);
    onSubscribed(log, { offset: 0, epoch: 'e2' }, false);
    const c = judgeDeliveries(acked('a', [1]), [log]);
    expect(c.recoveries).toBe(1);
    expect(c.epochChanges).toBe(1);
    expect(deliveryProblems(c)).toEqual([expect.stringContaining('new epoch')]);
  });
});

describe('judgeAfterFailovers', () => {
  const stream = (epoch: string, entries: [number, number][]) => ({ epoch, offset: entries.at(-1)?.[0] ?? 0, tags: new Map(entries) });
  const acks = (pairs: [number, number][]): Acked[] => pairs.map(([offset, tag]) => ({ channel: 'a', offset, tag }));

  it('accepts a subscriber told after Redis lost publications, and counts what was lost', () => {
    // Redis acknowledged 1..5, lost 4 and 5, handed 4 and 5 to new publications, and the epoch forked.
    const acked = acks([[1, 10], [2, 20], [3, 30], [4, 40], [5, 50], [4, 41], [5, 51], [6, 61]]);
    const log = newLog('a');
    onSubscribed(log, { offset: 0, epoch: 'e1' }, false);
    log.offsets.push(1, 2, 3, 4, 5);
    log.tags.push(10, 20, 30, 40, 50);
    onSubscribed(log, { offset: 5, epoch: 'e2' }, false);
    log.offsets.push(6);
    log.tags.push(61);
    const c = judgeAfterFailovers(acked, [log], new Map([['a', stream('e2', [[1, 10], [2, 20], [3, 30], [4, 41], [5, 51], [6, 61]])]]));
    expect(c).toMatchObject({ delivered: 6, breaks: 0, wrongData: 0, behind: 0, told: 1, lostByRedis: 2 });
    expect(failoverProblems(c)).toEqual([]);
  });

  it('finds a silent skip, a repeat, a stale payload and a subscriber left behind', () => {
    const acked = acks([[1, 10], [2, 20], [3, 30]]);
    const final = new Map([['a', stream('e1', [[1, 10], [2, 20], [3, 30]])]]);
    const of = (offsets: number[], tags: number[], epoch = 'e1') => {
      const log = newLog('a');
      onSubscribed(log, { offset: 0, epoch }, false);
      log.offsets.push(...offsets);
      log.tags.push(...tags);
      return log;
    };
    expect(judgeAfterFailovers(acked, [of([1, 3], [10, 30])], final)).toMatchObject({ breaks: 1 });
    expect(judgeAfterFailovers(acked, [of([1, 2, 2, 3], [10, 20, 20, 30])], final)).toMatchObject({ breaks: 1 });
    expect(judgeAfterFailovers(acked, [of([1, 2, 3], [10, 20, 99])], final)).toMatchObject({ wrongData: 1 });
    expect(judgeAfterFailovers(acked, [of([1, 2], [10, 20])], final)).toMatchObject({ behind: 1 });
    expect(judgeAfterFailovers(acked, [of([1, 2, 3], [10, 20, 30], 'e0')], final)).toMatchObject({ behind: 1 });
    expect(failoverProblems(judgeAfterFailovers(acked, [of([1, 3], [10, 99])], final))).toHaveLength(2);
  });

  it('lets a recovered resubscribe continue the same stretch', () => {
    const log = newLog('a');
    onSubscribed(log, { offset: 0, epoch: 'e1' }, false);
    log.offsets.push(1);
    log.tags.push(10);
    onSubscribed(log, { offset: 2, epoch: 'e1' }, true);
    log.offsets.push(2);
    log.tags.push(20);
    const c = judgeAfterFailovers(acks([[1, 10], [2, 20]]), [log], new Map([['a', stream('e1', [[1, 10], [2, 20]])]]));
    expect(c).toMatchObject({ breaks: 0, told: 0, recoveries: 1, behind: 0 });
  });
});
