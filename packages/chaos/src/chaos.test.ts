// The short chaos runs of npm test: every fault once against 3 gateways and 2 workers behind a balancer, judged
// delivery by delivery — on one Redis with AOF (nothing acknowledged may be lost), and on Sentinel and Redis
// Cluster with failovers (what Redis loses is counted; no subscriber may skip anything untold).
import { defaultChaos, formatReport, passed, runChaos, type ChaosReport } from './chaos';

function summary(lines: string[], report: ChaosReport): string {
  return `${lines.join('\n')}\n${formatReport(report)}\n${[...report.problems, ...report.unplannedExits].join('\n')}`;
}

it('loses nothing through a gateway SIGKILL and SIGSTOP, a pub/sub kill, a worker SIGKILL and a Redis restart', async () => {
  const lines: string[] = [];
  const report = await runChaos({ ...defaultChaos, seconds: 42, subscribers: 45, publishRate: 150, docWriters: 6, log: (l) => lines.push(l) });
  const text = summary(lines, report);
  expect({ faults: [...new Set(report.faults)].length, passed: passed(report), text }).toEqual({ faults: 5, passed: true, text });
  // The judgement had something to judge: publications, document updates and resubscribes that recovered.
  expect(report.delivered).toBeGreaterThan(10000);
  expect(report.docUpdates).toBeGreaterThan(1000);
  expect(report.recoveries).toBeGreaterThan(0);
}, 120000);

it('on Sentinel, through a SENTINEL FAILOVER and a killed primary, no subscriber skips a publication untold', async () => {
  const lines: string[] = [];
  const report = await runChaos({ ...defaultChaos, topology: 'sentinel', seconds: 49, subscribers: 45, publishRate: 150, docWriters: 6, log: (l) => lines.push(l) });
  const text = summary(lines, report);
  expect({ faults: [...new Set(report.faults)].length, passed: passed(report), text }).toEqual({ faults: 6, passed: true, text });
  expect(report.topology).toBe('sentinel');
  expect(report.delivered).toBeGreaterThan(10000);
  expect(report.docUpdates).toBeGreaterThan(1000);
}, 150000);

it('on Redis Cluster, through a moved slot, a killed primary and a killed worker, no subscriber skips a publication untold', async () => {
  const lines: string[] = [];
  const report = await runChaos({ ...defaultChaos, topology: 'cluster', seconds: 49, subscribers: 45, publishRate: 150, docWriters: 6, log: (l) => lines.push(l) });
  const text = summary(lines, report);
  expect({ faults: [...new Set(report.faults)].length, passed: passed(report), text }).toEqual({ faults: 6, passed: true, text });
  expect(report.topology).toBe('cluster');
  expect(report.delivered).toBeGreaterThan(10000);
  expect(report.docUpdates).toBeGreaterThan(1000);
}, 150000);
