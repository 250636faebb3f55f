// A request refused with a protocol error code, thrown by client commands and HTTP API calls alike.
import { ErrorCode, protocolError, type ProtocolError } from '@switchboard/protocol';
import { channelNameProblem, resolveChannel, type ChannelConfig, type NamespaceOptions } from './channels';

export class Refusal extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message);
  }
}

/** Refuses the request: `detail` says what to change. */
export function refuse(code: number, detail?: string): never {
  throw new Refusal(protocolError(code, detail));
}

/** The options of a channel a request names, or a refusal: 107 for a name that is not acceptable, 102 for an unknown namespace. */
export function channelOptions(config: ChannelConfig, maxChannelLength: number, channel: string): NamespaceOptions {
  const problem = channelNameProblem(channel, maxChannelLength);
  if (problem) refuse(ErrorCode.BadRequest, problem);
  const ns = resolveChannel(config, channel);
  if (!ns) refuse(ErrorCode.UnknownChannel, `no namespace for channel "${channel}"`);
  return ns;
}
