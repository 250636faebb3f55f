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
  /** `pairs`: client id, info JSON, client id, info JSON, … */
  sbPresenceAdd(entriesKey: string, expiryKey: string, ttlMs: number, ...pairs: string[]): Promise<number>;
  sbPresenceRemove(entriesKey: string, expiryKey: string, ...clients: string[]): Promise<number>;
  sbPresenceGet(entriesKey: string, expiryKey: string, mode: 'entries'): Promise<string[]>;
  sbPresenceGet(entriesKey: string, expiryKey: string, mode: 'stats'): Promise<[number, number]>;
}

export type ScriptedRedis = Redis & ScriptCommands;

/** What the broker needs of a channel's command connection: the scripts and a few plain commands. */
export type ChannelCommands = ScriptCommands & Pick<Redis, 'del' | 'publish' | 'spublish'>;

// From src/ (jest) and from dist/ alike, the scripts are one level up.
const LUA_DIR = path.join(__dirname, '..', 'lua');
const SCRIPTS = {
  sbPublish: { file: 'publish.lua', numberOfKeys: 3 },
  sbHistory: { file: 'history.lua', numberOfKeys: 2 },
  sbPresenceAdd: { file: 'presence_add.lua', numberOfKeys: 2 },
  sbPresenceRemove: { file: 'presence_remove.lua', numberOfKeys: 2 },
  sbPresenceGet: { file: 'presence_get.lua', numberOfKeys: 2 },
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
