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
  ): Promise<PublishReply>;
  sbHistory(
    metaKey: string,
    historyKey: string,
    newEpoch: string,
    metaTtlSeconds: number,
    limit: number,
    sinceOffset: number | '',
    reverse: '1' | '0',
  ): Promise<HistoryReply>;
}

export type ScriptedRedis = Redis & ScriptCommands;

// From src/ (jest) and from dist/ alike, the scripts are one level up.
const LUA_DIR = path.join(__dirname, '..', 'lua');
let sources: { publish: string; history: string } | undefined;

function loadSources(): { publish: string; history: string } {
  sources ??= {
    publish: fs.readFileSync(path.join(LUA_DIR, 'publish.lua'), 'utf8'),
    history: fs.readFileSync(path.join(LUA_DIR, 'history.lua'), 'utf8'),
  };
  return sources;
}

/** Registers the scripts; ioredis sends EVALSHA and falls back to EVAL after a restart emptied the script cache. */
export function withScripts(redis: Redis): ScriptedRedis {
  const lua = loadSources();
  redis.defineCommand('sbPublish', { numberOfKeys: 3, lua: lua.publish });
  redis.defineCommand('sbHistory', { numberOfKeys: 2, lua: lua.history });
  return redis as ScriptedRedis;
}
