// A tiny benchmark run inside `npm test`: checks that the load generator counts right (every publication reaches
// every subscriber exactly once, nothing is lost), never how fast anything is. Needs the built dist/ (npm test
// builds first) and redis-server on the PATH.
import { existsSync } from 'node:fs';
import { channelPlacement, type PrimaryPlacement } from './cluster_spread';
import { benchScript } from './ipc';
import { LoadGen, runStep } from './runner';
import { startCluster, type Cluster } from './systems';
import type { DocResult, DocRun } from './doc_proc';

jest.setTimeout(30000);

describe('benchmark smoke run', () => {
  let gen: LoadGen;

  beforeAll(() => {
    if (!existsSync(benchScript('sub_proc'))) throw new Error('packages/bench is not built: run `npx tsc -b` first');
    gen = LoadGen.start({ subscriberProcesses: 2 });
  });

  afterAll(async () => {
    await gen?.stop();
  });

  async function fanout(
    cluster: Cluster,
    subscribers: number,
    channels: string[],
    pick: 'cycle' | 'random',
    step: number,
    afterConnect?: () => Promise<void>,
  ): Promise<void> {
    await gen.initPublisher(cluster, 4);
    const plans = Array.from({ length: subscribers }, (_, i) => ({ port: cluster.ports[i % cluster.ports.length], channels: [channels[i % channels.length]] }));
    const connected = await gen.connect(cluster, plans, 10);
    expect(connected).toMatchObject({ ok: subscribers, failed: 0 });
    await afterConnect?.();
    const perChannel = channels.map((_, c) => plans.filter((p) => p.channels[0] === channels[c]).length);
    const r = await runStep(gen, cluster, { step, rate: 40, durationMs: 500, channels, pick, size: 64, subscribersPerChannel: perChannel, maxDrainMs: 5000 });
    expect(r.published).toBe(20);
    expect(r.publishFailed).toBe(0);
    expect(r.expected).toBeGreaterThan(0);
    if (channels.length === 1) expect(r.expected).toBe(r.published * subscribers);
    expect(r.received).toBe(r.expected);
    expect(r.missing).toBe(0);
    expect(r.stray).toBe(0);
    expect(r.malformed).toBe(0);
    expect(r.closed).toBe(0);
    expect(r.latency.count).toBe(r.received);
    await gen.disconnect();
  }

  it('counts every delivery through a Switchboard gateway, and every document update', async () => {
    const cluster = await startCluster('switchboard', { nodes: 1, worker: true });
    try {
      await fanout(cluster, 20, ['bench:smoke'], 'cycle', 1);
      await fanout(cluster, 12, ['bench:s0', 'bench:s1', 'bench:s2'], 'random', 2);

      const run: DocRun = {
        system: 'switchboard',
        workload: 'hot',
        writers: 5,
        durationMs: 300,
        docs: 1,
        fields: 1,
        host: cluster.host,
        ports: cluster.ports,
        apiKey: cluster.apiKey,
        prefix: 'docs:smoke-',
        redisUrl: cluster.redisUrl,
      };
      const docs = await gen.docs.call<DocResult>('run', run);
      expect(docs.errorSamples).toEqual([]);
      expect(docs.commits).toBeGreaterThan(0);
      expect(docs.conflicts).toBe(0); // disjoint fields always merge
      expect(docs.applied + docs.merged + docs.conflicts + docs.errors).toBe(docs.attempts);

      const naive = await gen.docs.call<DocResult>('run', { ...run, system: 'naive' });
      expect(naive.errors).toBe(0);
      expect(naive.commits).toBeGreaterThan(0);
      expect(naive.attempts).toBeGreaterThanOrEqual(naive.commits);
    } finally {
      await cluster.stop();
    }
  });

  it('counts every delivery through Switchboard on a Redis Cluster, and finds which primary holds each channel', async () => {
    const cluster = await startCluster('switchboard', { nodes: 1, redis: 'cluster' });
    try {
      expect(cluster.processes.map((p) => p.name)).toEqual(['redis1', 'redis2', 'redis3', 'gw1']);
      const channels = Array.from({ length: 12 }, (_, c) => `bench:c${c}`);
      let placement: PrimaryPlacement[] = [];
      await fanout(cluster, 24, channels, 'random', 4, async () => {
        placement = await channelPlacement(cluster, channels);
      });
      expect(placement.map((p) => p.name).sort()).toEqual(['redis1', 'redis2', 'redis3']);
      expect(placement.reduce((n, p) => n + p.slots, 0)).toBe(16384);
      expect(placement.reduce((n, p) => n + p.channels, 0)).toBe(channels.length);
      // The gateway subscribed each channel on the primary that owns its slot, and nowhere else.
      expect(placement.map((p) => p.subscribed)).toEqual(placement.map((p) => p.channels));
    } finally {
      await cluster.stop();
    }
  });

  it('counts every delivery through the Pusher edge, published through the signed Pusher HTTP API', async () => {
    const cluster = await startCluster('switchboard-pusher', { nodes: 1 });
    try {
      await fanout(cluster, 10, ['bench-smoke'], 'cycle', 5);
      await fanout(cluster, 12, ['bench-s0', 'bench-s1', 'bench-s2'], 'random', 6);
    } finally {
      await cluster.stop();
    }
  });

  it('counts every delivery to subscribers on the Centrifugo Protobuf protocol (binary frames)', async () => {
    const cluster = await startCluster('switchboard-protobuf', { nodes: 1 });
    try {
      expect(cluster.proto).toBe('centrifugo-protobuf');
      await fanout(cluster, 10, ['bench:smoke'], 'cycle', 7);
      await fanout(cluster, 12, ['bench:s0', 'bench:s1', 'bench:s2'], 'random', 8);
    } finally {
      await cluster.stop();
    }
  });

  it('counts every delivery through the Socket.IO peer', async () => {
    const cluster = await startCluster('socketio', { nodes: 1 });
    try {
      await fanout(cluster, 10, ['bench:smoke'], 'cycle', 3);
    } finally {
      await cluster.stop();
    }
  });
});
