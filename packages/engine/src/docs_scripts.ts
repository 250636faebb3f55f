// The document Lua scripts (../lua/doc_*.lua) registered on an ioredis connection as typed commands.
import fs from 'node:fs';
import path from 'node:path';
import type Redis from 'ioredis';

/** `[top offset, epoch, state JSON | null]` */
export type DocGetReply = [number, string, string | null];
/** `[top offset, epoch, state, writes JSON, floor, stored version, idempotency record]`, absent ones null. */
export type DocLoadReply = [number, string, string | null, string | null, string | null, string | null, string | null];
/** doc_commit_batch.lua, per group: `['dup', [i, record, ...]]` (i counts records from 1), `['stale', current offset]` or `['ok', epoch]`. */
export type DocCommitReply = ['dup', Array<number | string>] | ['stale', number] | ['ok', string];

export interface DocScriptCommands {
  sbDocGet(docKey: string, metaKey: string, idempotencyKey: string, newEpoch: string, metaTtlSeconds: number, full: '0'): Promise<DocGetReply>;
  sbDocGet(docKey: string, metaKey: string, idempotencyKey: string, newEpoch: string, metaTtlSeconds: number, full: '1'): Promise<DocLoadReply>;
  /**
   * doc_commit_batch.lua for several documents' groups on one Redis server: the keys of every group, then the
   * arguments of every group (each block as that file lists it, its publish command included), preceded by the
   * number of keys. One {@link DocCommitReply} per group, in order.
   */
  sbDocCommitGroups(numberOfKeys: number, ...keysAndArgs: Array<string | number>): Promise<DocCommitReply[]>;
  /**
   * doc_commit_batch.lua for one document's group (a single update is a group of one): its keys and arguments as
   * that file lists them, preceded by the number of keys (3 + one idempotency key per record).
   */
  sbDocCommitBatch(numberOfKeys: number, ...keysAndArgs: Array<string | number>): Promise<DocCommitReply>;
}

export type DocScriptedRedis = Redis & DocScriptCommands;

// From src/ (jest) and from dist/ alike, the scripts are one level up.
const LUA_DIR = path.join(__dirname, '..', 'lua');
const SCRIPTS = {
  sbDocGet: { file: 'doc_get.lua', numberOfKeys: 3 },
  // One idempotency key per record: the count comes with each call.
  sbDocCommitGroups: { file: 'doc_commit_batch.lua', numberOfKeys: undefined },
} satisfies Record<Exclude<keyof DocScriptCommands, 'sbDocCommitBatch'>, { file: string; numberOfKeys: number | undefined }>;

let sources: Map<string, string> | undefined;

/** Registers the document scripts on `redis` (EVALSHA, EVAL when the server does not know them yet). */
export function withDocScripts(redis: Redis): DocScriptedRedis {
  const lua = (sources ??= new Map(Object.values(SCRIPTS).map(({ file }) => [file, fs.readFileSync(path.join(LUA_DIR, file), 'utf8')])));
  for (const [name, { file, numberOfKeys }] of Object.entries(SCRIPTS)) {
    redis.defineCommand(name, { numberOfKeys, lua: lua.get(file) as string });
  }
  const scripted = redis as DocScriptedRedis;
  scripted.sbDocCommitBatch = async (numberOfKeys, ...keysAndArgs) => (await scripted.sbDocCommitGroups(numberOfKeys, ...keysAndArgs))[0];
  return scripted;
}
