// The judgement of a run, delivery by delivery: what every subscriber was owed, what it got, and what the documents hold.
import { API_KEY, sleep } from './cluster';

/** What one subscriber saw on one channel. */
export interface SubscriberLog {
  channel: string;
  /** Offsets of the publications delivered, in delivery order. */
  offsets: number[];
  /** What each delivery carried (the publisher's sequence number `n`, or the document version), beside `offsets`. */
  tags: number[];
  /** Ranges (after, upTo] the server said it could not recover: offsets in them may be missing. */
  excused: [after: number, upTo: number][];
  /** Offset of the stream when the subscriber first subscribed: it is owed everything after. */
  startedAt: number;
  /** The epoch of its first subscribe; another one later means the stream was lost and started anew. */
  epoch: string;
  /** Epochs other than the first that a resubscribe reported. */
  epochChanges: number;
  /** Resubscribes that recovered. */
  recoveries: number;
  /**
   * Where each stretch of continuous delivery began: the first subscribe and every resubscribe that was told it
   * could not recover, with the position it was given and the index of its first delivery in `offsets`.
   */
  segments: { epoch: string; from: number; start: number }[];
}

export function newLog(channel: string): SubscriberLog {
  return { channel, offsets: [], tags: [], excused: [], startedAt: -1, epoch: '', epochChanges: 0, recoveries: 0, segments: [] };
}

/** Records a (re)subscribe of `log`'s subscription: where its stream stands and whether the server recovered the gap. */
export function onSubscribed(log: SubscriberLog, position: { offset: number; epoch: string } | undefined, recovered: boolean): void {
  const top = position?.offset ?? 0;
  const epoch = position?.epoch ?? '';
  if (log.startedAt < 0 || !recovered) log.segments.push({ epoch, from: top, start: log.offsets.length });
  if (log.startedAt < 0) {
    log.startedAt = top;
    log.epoch = epoch;
    return;
  }
  if (epoch !== log.epoch) log.epochChanges++;
  if (recovered) log.recoveries++;
  else log.excused.push([log.offsets.at(-1) ?? log.startedAt, top]);
}

/** A publication (or document version) the server acknowledged: it is owed to every subscriber of its channel. */
export interface Acked {
  channel: string;
  offset: number;
  /** What the publication carries, as the subscribers' `tags` record it. */
  tag: number;
}

export interface DeliveryCounts {
  /** Deliveries owed: each acknowledged publication to each subscriber of its channel that was there for it. */
  owed: number;
  delivered: number;
  missing: number;
  duplicates: number;
  outOfOrder: number;
  /** Deliveries whose offset was acknowledged for another publication. */
  wrongData: number;
  /** Publications a subscriber was told it could not recover (allowed, and counted). */
  excused: number;
  recoveries: number;
  epochChanges: number;
}

/** Pure: compares what every subscriber got with what was acknowledged. Linear in deliveries plus owed deliveries. */
export function judgeDeliveries(acked: readonly Acked[], logs: readonly SubscriberLog[]): DeliveryCounts {
  const c: DeliveryCounts = { owed: 0, delivered: 0, missing: 0, duplicates: 0, outOfOrder: 0, wrongData: 0, excused: 0, recoveries: 0, epochChanges: 0 };
  const byChannel = new Map<string, Map<number, number>>();
  for (const a of acked) {
    let m = byChannel.get(a.channel);
    if (!m) byChannel.set(a.channel, (m = new Map()));
    m.set(a.offset, a.tag);
  }
  for (const log of logs) {
    c.recoveries += log.recoveries;
    c.epochChanges += log.epochChanges;
    const owedHere = byChannel.get(log.channel) ?? new Map<number, number>();
    const seen = new Map<number, number>();
    for (let i = 0; i < log.offsets.length; i++) {
      const o = log.offsets[i];
      seen.set(o, (seen.get(o) ?? 0) + 1);
      if (i > 0 && o <= log.offsets[i - 1]) c.outOfOrder++;
      const tag = owedHere.get(o);
      if (tag !== undefined && tag !== log.tags[i]) c.wrongData++;
    }
    for (const n of seen.values()) if (n > 1) c.duplicates += n - 1;
    for (const offset of owedHere.keys()) {
      if (offset <= log.startedAt) continue;
      if (log.excused.some(([after, upTo]) => offset > after && offset <= upTo)) {
        if (!seen.has(offset)) c.excused++;
        continue;
      }
      c.owed++;
      if (seen.has(offset)) c.delivered++;
      else c.missing++;
    }
  }
  return c;
}

export function deliveryProblems(c: DeliveryCounts): string[] {
  const problems: string[] = [];
  if (c.missing > 0) problems.push(`${c.missing} owed deliveries missing`);
  if (c.duplicates > 0) problems.push(`${c.duplicates} duplicate deliveries`);
  if (c.outOfOrder > 0) problems.push(`${c.outOfOrder} deliveries out of order`);
  if (c.wrongData > 0) problems.push(`${c.wrongData} deliveries carried another publication than their offset was acknowledged for`);
  // With AOF on every write nothing acknowledged may be lost, so a new epoch is a failure, not an excuse.
  if (c.epochChanges > 0) problems.push(`${c.epochChanges} resubscribes found a new epoch (the stream was lost)`);
  return problems;
}

export interface Verdict extends DeliveryCounts {
  publications: number;
  /** Publications stored twice, or acknowledged with an offset history does not hold. */
  publishMismatches: number;
  docUpdates: number;
  /** Writers whose field is not exactly the number of updates acknowledged to them. */
  docMismatches: number;
  problems: string[];
}

/** What a run hands the judge: the load's records, read once it has stopped. */
export interface RunRecord {
  /** Publications acknowledged by the publish API, tagged with the publisher's sequence number. */
  published: readonly Acked[];
  /** Document versions acknowledged by doc_update, tagged with the version itself. */
  docVersions: readonly Acked[];
  logs: readonly SubscriberLog[];
  /** Per writer: increments acknowledged (each an `incr` of 1 on its own field `w<i>`). */
  docAcked: readonly number[];
  docChannel: string;
  failures: readonly string[];
}

async function api<T>(url: string, method: string, body: unknown): Promise<T> {
  const res = await fetch(`${url}/api/${method}`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify(body), signal: AbortSignal.timeout(10000) });
  const json = (await res.json()) as { result?: T; error?: unknown };
  if (!json.result) throw new Error(`${method} failed: ${JSON.stringify(json.error)}`);
  return json.result;
}

/** Waits (up to `timeoutMs`) until every subscriber has caught up with its channels' current tops. */
export async function settle(run: RunRecord, url: string, timeoutMs: number): Promise<void> {
  const channels = [...new Set(run.logs.map((l) => l.channel))];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const tops = new Map<string, number>();
    try {
      for (const channel of channels) tops.set(channel, (await api<{ offset: number }>(url, 'history', { channel, limit: 0 })).offset);
    } catch {
      await sleep(200);
      continue;
    }
    if (run.logs.every((l) => (l.offsets.at(-1) ?? 0) >= (tops.get(l.channel) ?? 0))) return;
    await sleep(200);
  }
}

export async function judge(run: RunRecord, url: string): Promise<Verdict> {
  const counts = judgeDeliveries([...run.published, ...run.docVersions], run.logs);
  const v: Verdict = { ...counts, publications: run.published.length, publishMismatches: 0, docUpdates: 0, docMismatches: 0, problems: [...run.failures, ...deliveryProblems(counts)] };

  // Exactly-once publishing: history holds each publication once, at the offset its acknowledgement named.
  const byChannel = new Map<string, Acked[]>();
  for (const a of run.published) {
    const list = byChannel.get(a.channel);
    if (list) list.push(a);
    else byChannel.set(a.channel, [a]);
  }
  for (const [channel, list] of byChannel) {
    const h = await api<{ publications: { offset: number; data: { n: number } }[] }>(url, 'history', { channel, limit: -1 });
    const atOffset = new Map(h.publications.map((p) => [p.offset, p.data.n]));
    const counts = new Map<number, number>();
    for (const p of h.publications) counts.set(p.data.n, (counts.get(p.data.n) ?? 0) + 1);
    for (const [, n] of counts) if (n > 1) v.publishMismatches++;
    for (const a of list) if (atOffset.get(a.offset) !== a.tag) v.publishMismatches++;
  }
  if (v.publishMismatches > 0) v.problems.push(`${v.publishMismatches} publications stored twice or not where acknowledged`);

  if (run.docAcked.length > 0) {
    const doc = await api<{ version: number; state: Record<string, number> }>(url, 'doc_get', { channel: run.docChannel });
    run.docAcked.forEach((acked, w) => {
      v.docUpdates += acked;
      if ((doc.state[`w${w}`] ?? 0) !== acked) {
        v.docMismatches++;
        v.problems.push(`document field w${w} is ${doc.state[`w${w}`]} after ${acked} acknowledged increments`);
      }
    });
    // Every update was an increment, so the versions 1..N are exactly the acknowledged updates.
    if (doc.version !== v.docUpdates) v.problems.push(`document version ${doc.version} after ${v.docUpdates} acknowledged updates`);
  }
  return v;
}

/**
 * The judgement where Redis itself may lose acknowledged publications (a primary failed over before its replica
 * caught up): what must still hold is that no subscriber skips anything silently. Each stretch of a subscriber's
 * deliveries (from a subscribe, or a resubscribe told it could not recover) is gap-free and in order from the
 * position it was given, carries only acknowledged publications, and the last stretch ends at the stream's top in
 * its current epoch. What Redis lost is counted, not excused silently.
 */
export interface FailoverCounts {
  delivered: number;
  /** Breaks inside a stretch: a skipped offset, a repeat, or a step back. */
  breaks: number;
  /** Deliveries of something nobody acknowledged, or of another publication than history holds at that offset. */
  wrongData: number;
  /** Subscribers whose last stretch does not end at the stream's top, or is in an old epoch. */
  behind: number;
  /** Resubscribes told they could not recover. */
  told: number;
  recoveries: number;
  /** Acknowledged publications history no longer holds at their offset: lost by Redis. */
  lostByRedis: number;
}

export interface FinalStream {
  epoch: string;
  offset: number;
  /** History of the current epoch: offset → tag. */
  tags: Map<number, number>;
}

export function judgeAfterFailovers(acked: readonly Acked[], logs: readonly SubscriberLog[], streams: ReadonlyMap<string, FinalStream>): FailoverCounts {
  const c: FailoverCounts = { delivered: 0, breaks: 0, wrongData: 0, behind: 0, told: 0, recoveries: 0, lostByRedis: 0 };
  const ackedTags = new Map<string, Set<number>>();
  for (const a of acked) {
    let set = ackedTags.get(a.channel);
    if (!set) ackedTags.set(a.channel, (set = new Set()));
    set.add(a.tag);
    if (streams.get(a.channel)?.tags.get(a.offset) !== a.tag) c.lostByRedis++;
  }
  for (const log of logs) {
    const stream = streams.get(log.channel);
    const known = ackedTags.get(log.channel) ?? new Set<number>();
    c.recoveries += log.recoveries;
    c.told += Math.max(0, log.segments.length - 1);
    c.delivered += log.offsets.length;
    log.segments.forEach((seg, k) => {
      const end = k + 1 < log.segments.length ? log.segments[k + 1].start : log.offsets.length;
      let next = seg.from + 1;
      for (let i = seg.start; i < end; i++) {
        const offset = log.offsets[i];
        if (offset !== next) c.breaks++;
        next = offset + 1;
        const tag = log.tags[i];
        if (!known.has(tag) || (seg.epoch === stream?.epoch && stream.tags.has(offset) && stream.tags.get(offset) !== tag)) c.wrongData++;
      }
      if (k === log.segments.length - 1 && stream && (seg.epoch !== stream.epoch || next - 1 !== stream.offset)) c.behind++;
    });
  }
  return c;
}

export function failoverProblems(c: FailoverCounts): string[] {
  const problems: string[] = [];
  if (c.breaks > 0) problems.push(`${c.breaks} breaks (gap, repeat or step back) inside a subscriber's continuous stretch`);
  if (c.wrongData > 0) problems.push(`${c.wrongData} deliveries of something not acknowledged, or not what history holds at that offset`);
  if (c.behind > 0) problems.push(`${c.behind} subscribers did not end at their stream's top`);
  return problems;
}

export interface FailoverVerdict extends FailoverCounts {
  publications: number;
  /** Publications in history twice: republished by a retry after Redis lost the first one and its idempotency record. */
  republished: number;
  docUpdates: number;
  /** Acknowledged document updates the document no longer holds: lost by Redis with their version. */
  docLost: number;
  problems: string[];
}

/**
 * The judgement of a run on a topology that fails over (see judgeAfterFailovers). `docsReplicated`: the workers
 * acknowledged a commit only once a replica had it, so no acknowledged document update may be lost.
 */
export async function judgeFailover(run: RunRecord, url: string, docsReplicated: boolean): Promise<FailoverVerdict> {
  const streams = new Map<string, FinalStream>();
  const channels = new Set([...run.published.map((a) => a.channel), ...run.logs.map((l) => l.channel)]);
  let republished = 0;
  for (const channel of channels) {
    const h = await api<{ epoch: string; offset: number; publications: { offset: number; data: { n?: number; version?: number } }[] }>(url, 'history', { channel, limit: -1 });
    const tags = new Map<number, number>();
    const seen = new Set<number>();
    for (const p of h.publications) {
      const tag = (channel === run.docChannel ? p.data.version : p.data.n) ?? -1;
      tags.set(p.offset, tag);
      if (seen.has(tag)) republished++;
      seen.add(tag);
    }
    streams.set(channel, { epoch: h.epoch, offset: h.offset, tags });
  }
  const counts = judgeAfterFailovers([...run.published, ...run.docVersions], run.logs, streams);
  const v: FailoverVerdict = { ...counts, publications: run.published.length, republished, docUpdates: 0, docLost: 0, problems: [...run.failures, ...failoverProblems(counts)] };
  if (run.docAcked.length > 0) {
    const doc = await api<{ state: Record<string, number> }>(url, 'doc_get', { channel: run.docChannel });
    run.docAcked.forEach((acked, w) => {
      v.docUpdates += acked;
      const held = doc.state[`w${w}`] ?? 0;
      if (held > acked) v.problems.push(`document field w${w} is ${held} after ${acked} acknowledged increments: applied twice`);
      else v.docLost += acked - held;
    });
    if (docsReplicated && v.docLost > 0) v.problems.push(`${v.docLost} acknowledged document updates lost although a replica acknowledged each`);
  }
  return v;
}
