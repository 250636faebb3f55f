// The history result both clients and the HTTP API get, built from the stored publication encodings.
import type { HistoryResult } from '@switchboard/engine';
import { ErrorCode, type StreamPosition } from '@switchboard/protocol';
import { refuse } from './refusal';

/** `{"publications":[…],"epoch":…,"offset":…}`; a `since` from another epoch is refused with 112. */
export function encodeHistory(result: HistoryResult, since?: StreamPosition): string {
  if (since && since.epoch !== '' && since.epoch !== result.epoch) {
    refuse(ErrorCode.UnrecoverablePosition, `"since" names epoch ${JSON.stringify(since.epoch)}; the channel's epoch is ${JSON.stringify(result.epoch)}`);
  }
  const pubs = result.publications.map((p) => p.json).join(',');
  return `{"publications":[${pubs}],"epoch":${JSON.stringify(result.epoch)},"offset":${result.offset}}`;
}
