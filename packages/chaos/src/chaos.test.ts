// The short chaos runs of npm test: every fault once against 3 gateways and 2 workers behind a balancer, judged
// delivery by delivery — on one Redis with AOF (nothing acknowledged may be lost), and on Sentinel and Redis
// Cluster with failovers (what Redis loses is counted; no subscriber may skip anything untold).
import type { Topology } from './cluster';
import { defaultChaos, formatReport, passed, runChaos, type ChaosReport } from './chaos';

/** Runs every fault of the topology once and expects a clean verdict with something to judge; the log on failure. */
async function shortRun(topology: Topology, seconds: number, faults: number): Promise<ChaosReport> {
  const lines: string[] = [];
  const report = await runChaos({ ...defaultChaos, topology, seconds, subscribers: 45, publishRate: 150, docWriters: 6, log: (l) => lines.push(l) });
  const text = `${lines.join('\n')}\n${formatReport(report)}\n${[...report.problems, ...report.unplannedExits].join('\n')}`;
  // On failure the whole log and verdict are the message (a diff of two equal texts would hide them).
  if (report.topology !== topology || new Set(report.faults).size !== faults || !passed(report)) throw new Error(`chaos run failed:\n${text}`);
  expect(report.delivered).toBeGreaterThan(10000);
  expect(report.docUpdates).toBeGreaterThan(1000);
  return report;
}

it('loses nothing through a gateway SIGKILL and SIGSTOP, a pub/sub kill, a worker SIGKILL and a Redis restart', async () => {
  const report = await shortRun('redis', 42, 5);
  expect(report.recoveries).toBeGreaterThan(0);
}, 120000);

it('on Sentinel, through a SENTINEL FAILOVER and a killed primary, no subscriber skips a publication untold', async () => {
  await shortRun('sentinel', 49, 6);
}, 150000);

it('on Redis Cluster, through a moved slot, a killed primary and a killed worker, no subscriber skips a publication untold', async () => {
  await shortRun('cluster', 49, 6);
}, 150000);
