// The short chaos run: every fault once against 3 gateways and 2 workers behind a balancer, judged delivery by delivery.
import { formatReport, passed, runChaos, defaultChaos } from './chaos';

it('loses nothing through a gateway SIGKILL and SIGSTOP, a pub/sub kill, a worker SIGKILL and a Redis restart', async () => {
  const lines: string[] = [];
  const report = await runChaos({ ...defaultChaos, seconds: 42, subscribers: 45, publishRate: 150, docWriters: 6, log: (l) => lines.push(l) });
  const summary = `${lines.join('\n')}\n${formatReport(report)}\n${[...report.problems, ...report.unplannedExits].join('\n')}`;
  expect({ faults: [...new Set(report.faults)].length, passed: passed(report), summary }).toEqual({ faults: 5, passed: true, summary });
  // The judgement had something to judge: publications, document updates and resubscribes that recovered.
  expect(report.delivered).toBeGreaterThan(10000);
  expect(report.docUpdates).toBeGreaterThan(1000);
  expect(report.recoveries).toBeGreaterThan(0);
}, 120000);
