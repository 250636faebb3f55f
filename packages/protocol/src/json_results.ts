// The JSON variant's results, spliced from stored JSON (publications, client infos) without re-encoding it.
import type { ConnectResult, HistoryResult, PresenceResult, PresenceStatsResult, ReplyMethod, Results, SubscribeResult } from './types';

/** `{"publications":[…],"epoch":…,"offset":…}`, also the HTTP API's history result. */
export function encodeHistoryResult(r: HistoryResult): string {
  const pubs = r.publications.map((p) => p.json).join(',');
  return `{"publications":[${pubs}],"epoch":${JSON.stringify(r.epoch)},"offset":${r.offset}}`;
}

/** `{"presence":{"<client>":<ClientInfo>,…}}`, also the HTTP API's presence result. */
export function encodePresenceResult(r: PresenceResult): string {
  const parts: string[] = [];
  for (const [client, info] of r.presence) parts.push(`${JSON.stringify(client)}:${info}`);
  return `{"presence":{${parts.join(',')}}}`;
}

/** Both counts are sent even when 0. */
export function encodePresenceStatsResult(r: PresenceStatsResult): string {
  return JSON.stringify({ num_clients: r.num_clients, num_users: r.num_users });
}

export function encodeSubscribeResult(r: SubscribeResult): string {
  const fields: string[] = [];
  if (r.expires) fields.push(`"expires":true,"ttl":${r.ttl ?? 0}`);
  if (r.positioned) {
    fields.push(`"epoch":${JSON.stringify(r.epoch ?? '')},"offset":${r.offset ?? 0},"positioned":true`);
    if (r.recoverable) fields.push('"recoverable":true');
    if (r.was_recovering) {
      fields.push(`"was_recovering":true,"recovered":${r.recovered === true}`);
      if (r.publications) fields.push(`"publications":[${r.publications.map((p) => p.json).join(',')}]`);
    }
  }
  if (r.delta) fields.push('"delta":true');
  return `{${fields.join(',')}}`;
}

function encodeConnectResult(r: ConnectResult): string {
  const { subs, ...rest } = r;
  const json = JSON.stringify(rest);
  const channels = subs === undefined ? [] : Object.keys(subs);
  if (channels.length === 0) return json;
  const parts = channels.map((channel) => `${JSON.stringify(channel)}:${encodeSubscribeResult((subs as Record<string, SubscribeResult>)[channel])}`);
  return `${json.slice(0, -1)},"subs":{${parts.join(',')}}}`;
}

/** Each method's result as JSON. */
export const jsonResults: { readonly [M in ReplyMethod]: (r: Results[M]) => string } = {
  connect: encodeConnectResult,
  subscribe: encodeSubscribeResult,
  unsubscribe: () => '{}',
  publish: () => '{}',
  presence: encodePresenceResult,
  presence_stats: encodePresenceStatsResult,
  history: encodeHistoryResult,
  rpc: (r) => `{"data":${r.data}}`,
  refresh: (r) => JSON.stringify(r),
  sub_refresh: (r) => (r.expires ? `{"expires":true,"ttl":${r.ttl ?? 0}}` : '{}'),
};
