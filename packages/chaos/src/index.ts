// Fault injection (chaos) and long steady runs (soak) against a whole cluster on one machine.
export { runChaos, formatReport, passed, defaultChaos, type ChaosOptions, type ChaosReport } from './chaos';
export { runSoak, formatSoak, defaultSoak, type SoakOptions, type SoakReport } from './soak';
export { judgeDeliveries, deliveryProblems, type Acked, type SubscriberLog, type DeliveryCounts } from './judge';
