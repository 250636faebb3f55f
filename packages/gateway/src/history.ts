// The history result both clients and the HTTP API get, built from the stored publication encodings.
import type { HistoryResult } from '@switchboard/engine';
import { encodeHistoryResult, ErrorCode, type StreamPosition } from '@switchboard/protocol';
import { refuse } from './refusal';

/** A `since` from another epoch than the channel's is refused with 112. */
export function checkHistorySince(result: HistoryResult, since?: StreamPosition): void {
  if (since && since.epoch !== '' && since.epoch !== result.epoch) {
    refuse(ErrorCode.UnrecoverablePosition, `"since" names epoch ${JSON.stringify(since.epoch)}; the channel's epoch is ${JSON.stringify(result.epoch)}`);
  }
}

/** `{"publications":[…],"epoch":…,"offset":…}` (JSON); a `since` from another epoch is refused with 112. */
export function encodeHistory(result: HistoryResult, since?: StreamPosition): string {
  checkHistorySince(result, since);
  return encodeHistoryResult(result);
}
