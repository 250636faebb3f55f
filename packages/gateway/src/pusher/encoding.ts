// The Pusher edge's fan-out encoding: a publication becomes one channel event frame, a user's join or leave of a
// presence channel (its first connection, its last) becomes member_added / member_removed; the sender named in the
// tags is left out.
import type { JoinLeaveScope, Publication } from '@switchboard/engine';
import type { Json } from '@switchboard/protocol';
import type { WebSocket } from 'uWebSockets.js';
import type { FanoutEncoding, FrameExcept } from '../hub';
import { pusherTopic } from '../topics';
import { DEFAULT_EVENT, pusherName, TAG_EVENT, TAG_SOCKET_ID, TAG_USER_ID } from './channel_map';
import { encodeChannelEvent, encodeMemberAdded, encodeMemberRemoved } from './frames';
import { PRESENCE_PREFIX } from './names';

/** Finds a local Pusher socket by its socket id (publications name the one to leave out). */
export type SocketLookup = (socketId: string) => WebSocket<unknown> | undefined;

interface StoredPublication {
  data?: unknown;
  tags?: Record<string, string>;
}

interface StoredClientInfo {
  user?: unknown;
  client?: unknown;
  chan_info?: unknown;
}

function withExcept(frame: string, socketId: string | undefined, lookup: SocketLookup): string | FrameExcept {
  const except = socketId === undefined ? undefined : lookup(socketId);
  return except === undefined ? frame : { frame, except };
}

export function pusherEncoding(lookup: SocketLookup): FanoutEncoding {
  return {
    topic: pusherTopic,
    // Hot path: once per publication per gateway (parsed once, the same frame to every local Pusher subscriber).
    publication(channel: string, pub: Publication): string | FrameExcept {
      const stored = JSON.parse(pub.json) as StoredPublication;
      const tags = stored.tags ?? {};
      const data = typeof stored.data === 'string' ? stored.data : JSON.stringify(stored.data ?? null);
      const frame = encodeChannelEvent(tags[TAG_EVENT] ?? DEFAULT_EVENT, pusherName(channel), data, tags[TAG_USER_ID]);
      return withExcept(frame, tags[TAG_SOCKET_ID], lookup);
    },
    joinLeave(channel: string, kind: 'join' | 'leave', info: string, scope: JoinLeaveScope): string | FrameExcept | undefined {
      // Pusher members are users: a connection of a user who stays (or was there already) is no news.
      if (scope === 'client') return undefined;
      const name = pusherName(channel);
      if (!name.startsWith(PRESENCE_PREFIX)) return undefined;
      let member: StoredClientInfo;
      try {
        member = JSON.parse(info) as StoredClientInfo;
      } catch {
        return undefined;
      }
      // Anonymous connections (Centrifugo clients without a user) are no presence members to Pusher clients.
      if (typeof member.user !== 'string' || member.user === '') return undefined;
      const frame =
        kind === 'join'
          ? encodeMemberAdded(name, { user_id: member.user, user_info: (member.chan_info ?? null) as Json })
          : encodeMemberRemoved(name, member.user);
      // The member itself learned of its own arrival from subscription_succeeded.
      return withExcept(frame, typeof member.client === 'string' ? member.client : undefined, lookup);
    },
  };
}
