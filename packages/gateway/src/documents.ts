// Versioned documents for clients (rpc doc.get / doc.update) and backends (doc_get / doc_update): one path for both.
import { DocUnavailableError, type DocResult, type DocStore } from '@switchboard/engine';
import { DocError, ErrorCode, parseUpdate } from '@switchboard/protocol';
import type { Logger } from 'pino';
import type { ChannelConfig, NamespaceOptions } from './channels';
import type { GatewayMetrics } from './metrics';
import { channelOptions, refuse } from './refusal';

export class Documents {
  constructor(
    private readonly store: DocStore,
    private readonly channels: ChannelConfig,
    private readonly maxChannelLength: number,
    private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** The document channel a request names; refused unless its namespace holds documents. */
  channelOf(data: unknown): { channel: string; ns: NamespaceOptions } {
    const channel = (data as { channel?: unknown } | null)?.channel;
    if (typeof channel !== 'string' || channel === '') refuse(ErrorCode.BadRequest, '"channel" must be a non-empty string');
    const ns = channelOptions(this.channels, this.maxChannelLength, channel);
    if (!ns.documents) refuse(ErrorCode.BadRequest, `"${channel}" is not a document: its namespace does not set documents: true`);
    return { channel, ns };
  }

  /** `{"version":V,"epoch":"…","state":{…}}`: a snapshot to follow the channel from. */
  async get(channel: string): Promise<string> {
    const doc = await this.call(channel, () => this.store.get(channel));
    return `{"version":${doc.version},"epoch":${JSON.stringify(doc.epoch)},"state":${doc.state}}`;
  }

  async update(channel: string, ns: NamespaceOptions, data: unknown): Promise<string> {
    let update;
    try {
      update = parseUpdate(data);
    } catch (err) {
      if (err instanceof DocError) refuse(ErrorCode.BadRequest, err.message);
      throw err;
    }
    const started = performance.now();
    let result: DocResult;
    try {
      result = await this.call(channel, () => this.store.update(channel, update, { historySize: ns.history_size, historyTtlSeconds: ns.history_ttl }));
    } catch (err) {
      this.metrics.docUpdated('error');
      throw err;
    } finally {
      this.metrics.docSeconds.observe((performance.now() - started) / 1000);
    }
    this.metrics.docUpdated(result.duplicate ? 'duplicate' : result.status);
    return encodeResult(result);
  }

  private async call<T>(channel: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof DocError) refuse(ErrorCode.BadRequest, err.message);
      if (err instanceof DocUnavailableError) {
        this.logger.warn({ channel, err: err.message }, 'document request not carried out');
        refuse(ErrorCode.Internal, `${err.message}; retry with the same key`);
      }
      throw err;
    }
  }
}

function encodeResult(result: DocResult): string {
  if (result.status === 'conflict') {
    return `{"status":"conflict","version":${result.version},"paths":${JSON.stringify(result.paths)},"state":${result.state}}`;
  }
  return `{"status":"${result.status}","version":${result.version}}`;
}
