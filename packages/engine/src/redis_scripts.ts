// The Lua scripts in ../lua, registered on a connection as typed commands (EVALSHA, EVAL on NOSCRIPT).
import fs from 'node:fs';
import path from 'node:path';
import type Redis from 'ioredis';

/** `[offset, epoch, duplicate 0/1]` */
export type PublishReply = [number, string, number];
/** `[top offset, epoch, [[entry id (= offset), ['d', json]], …]]` */
export type HistoryReply = [number, string, Array<[string, string[]]>];

export interface ScriptCommands {
  sbPublish(
    metaKey: string,
    historyKey: string,
    idempotencyKey: string,
    body: string,
    historySize: number,
    historyTtlSeconds: number,
    metaTtlSeconds: number,
    newEpoch: string,
    pubsubChannel: string,
    idempotencyTtlSeconds: number,
    publishCommand: 'publish' | 'spublish',
  ): Promise<PublishReply>;
  sbHistory(
    metaKey: string,
    historyKey: string,
    newEpoch: string,
    metaTtlSeconds: number,
    limit: number,
    sinceOffset: number | '',
    reverse: '1' | '0',
    seenEpoch: string,
    seenOffset: number,
  ): Promise<HistoryReply>;
  /** See lua/presence_update.lua for the arguments of each operation. */
  sbPresenceUpdate(entriesKey: string, expiryKey: string, usersKey: string, ...args: (string | number)[]): Promise<PresenceUpdateReply>;
  sbPresenceGet(entriesKey: string, expiryKey: string, mode: 'entries'): Promise<string[]>;
  sbPresenceGet(entriesKey: string, expiryKey: string, mode: 'stats'): Promise<[number, number]>;
  sbOccupancy(key: string, op: 'add' | 'remove' | 'sweep', node: string, ttlMs: number, graceMs: number): Promise<OccupancyReply>;
  sbOccupancyIndex(key: string, op: 'touch', ...pairs: (string | number)[]): Promise<number>;
  sbOccupancyIndex(key: string, op: 'due', limit: number): Promise<string[]>;
  sbOccupancyIndex(key: string, op: 'drop', channel: string, expiry: number): Promise<number>;
  /** See lua/outbox.lua for the arguments and reply of each operation. */
  sbOutbox(stream: string, sequence: string, cursors: string, lease: string, op: string, ...args: (string | number)[]): Promise<unknown>;
}

/** `[first clients, added clients, joined {client, info, …}, left {client, info, …}]` */
export type PresenceUpdateReply = [string[], string[], string[], string[]];
/** `[change, latest expiry left (0 when none)]` */
export type OccupancyReply = ['occupied' | 'vacated' | '', number | string];

export type ScriptedRedis = Redis & ScriptCommands;

/** What the broker needs of a channel's command connection: the scripts and a few plain commands. */
export type ChannelCommands = ScriptCommands & Pick<Redis, 'del' | 'publish' | 'spublish'>;

// From src/ (jest) and from dist/ alike, the scripts are one level up.
const LUA_DIR = path.join(__dirname, '..', 'lua');
const SCRIPTS = {
  sbPublish: { file: 'publish.lua', numberOfKeys: 3 },
  sbHistory: { file: 'history.lua', numberOfKeys: 2 },
  sbPresenceUpdate: { file: 'presence_update.lua', numberOfKeys: 3 },
  sbPresenceGet: { file: 'presence_get.lua', numberOfKeys: 2 },
  sbOccupancy: { file: 'occupancy.lua', numberOfKeys: 1 },
  sbOccupancyIndex: { file: 'occupancy_index.lua', numberOfKeys: 1 },
  sbOutbox: { file: 'outbox.lua', numberOfKeys: 4 },
} satisfies Record<keyof ScriptCommands, { file: string; numberOfKeys: number }>;

type ScriptName = keyof typeof SCRIPTS;
let sources: Array<{ name: ScriptName; numberOfKeys: number; lua: string }> | undefined;

function loadSources(): Array<{ name: ScriptName; numberOfKeys: number; lua: string }> {
  sources ??= (Object.keys(SCRIPTS) as ScriptName[]).map((name) => ({
    name,
    numberOfKeys: SCRIPTS[name].numberOfKeys,
    lua: fs.readFileSync(path.join(LUA_DIR, SCRIPTS[name].file), 'utf8'),
  }));
  return sources;
}

/**
 * Registers the scripts. ioredis sends a script's first call on each connection as EVAL and later ones as
 * EVALSHA, so a restarted server (empty script cache) costs no NOSCRIPT round trip; only a SCRIPT FLUSH under a
 * live connection does, and its retry is the one case where a script call can overtake a later command.
 */
export function withScripts<T extends Pick<Redis, 'defineCommand'>>(redis: T): T & ScriptCommands {
  for (const { name, numberOfKeys, lua } of loadSources()) redis.defineCommand(name, { numberOfKeys, lua });
  return redis as T & ScriptCommands;
}
