// Channel namespaces: the options of each namespace (Centrifugo names) and how a channel finds its own.

/** Options of one namespace, named as in Centrifugo's config file. */
export interface NamespaceOptions {
  presence: boolean;
  join_leave: boolean;
  force_push_join_leave: boolean;
  /** Publications kept per channel; 0 keeps no history (and assigns no offsets). */
  history_size: number;
  /** Seconds history lives after the last publication; must be > 0 when history_size > 0. */
  history_ttl: number;
  force_positioning: boolean;
  allow_positioning: boolean;
  force_recovery: boolean;
  allow_recovery: boolean;
  allow_subscribe_for_client: boolean;
  allow_subscribe_for_anonymous: boolean;
  allow_publish_for_subscriber: boolean;
  allow_publish_for_client: boolean;
  allow_publish_for_anonymous: boolean;
  allow_history_for_subscriber: boolean;
  allow_history_for_client: boolean;
  allow_presence_for_subscriber: boolean;
  allow_presence_for_client: boolean;
  /** Channels `name#u1,u2` may be subscribed by the users listed after `#` without a token. */
  allow_user_limited_channels: boolean;
  /** Switchboard's own: channels of this namespace are versioned documents. */
  documents: boolean;
  /** Delta compressions a subscriber may ask for; only "fossil" exists. Needs recovery (history) to be useful. */
  allowed_delta_types: readonly string[];
  /** Every publication of the namespace goes to delta subscribers as a delta; else only those published with `delta: true`. */
  delta_publish: boolean;
  /** Subscribers may send a publication tags filter (`tf`). */
  allow_tags_filter: boolean;
}

export interface ChannelConfig {
  without_namespace: NamespaceOptions;
  namespaces: Record<string, NamespaceOptions>;
}

export const defaultNamespaceOptions: Readonly<NamespaceOptions> = Object.freeze({
  presence: false,
  join_leave: false,
  force_push_join_leave: false,
  history_size: 0,
  history_ttl: 0,
  force_positioning: false,
  allow_positioning: false,
  force_recovery: false,
  allow_recovery: false,
  allow_subscribe_for_client: false,
  allow_subscribe_for_anonymous: false,
  allow_publish_for_subscriber: false,
  allow_publish_for_client: false,
  allow_publish_for_anonymous: false,
  allow_history_for_subscriber: false,
  allow_history_for_client: false,
  allow_presence_for_subscriber: false,
  allow_presence_for_client: false,
  allow_user_limited_channels: false,
  documents: false,
  allowed_delta_types: Object.freeze([]) as readonly string[],
  delta_publish: false,
  allow_tags_filter: false,
});

export function defaultChannelConfig(): ChannelConfig {
  return { without_namespace: { ...defaultNamespaceOptions }, namespaces: {} };
}

export const NAMESPACE_SEPARATOR = ':';

/** Namespace name of a channel: the part before the first ':' ('' for none). */
export function namespaceOf(channel: string): string {
  const i = channel.indexOf(NAMESPACE_SEPARATOR);
  return i === -1 ? '' : channel.slice(0, i);
}

export const USER_LIMIT_SEPARATOR = '#';

/** Users a `name#u1,u2` channel is limited to, or undefined for a channel without `#`. */
export function channelUsers(channel: string): string[] | undefined {
  const i = channel.lastIndexOf(USER_LIMIT_SEPARATOR);
  return i === -1 ? undefined : channel.slice(i + 1).split(',');
}

/**
 * What is wrong with a channel name, or undefined when it is acceptable. The name a client sends is used as it
 * is in the permission check, the Redis key and the pub/sub channel, so anything that another layer could
 * rewrite is refused here: a lone UTF-16 surrogate (it would become U+FFFD on the way to Redis and alias another
 * channel) and control characters (C0, DEL). Length is counted in UTF-16 code units.
 */
export function channelNameProblem(channel: string, maxLength: number): string | undefined {
  if (channel.length > maxLength) return `channel name longer than ${maxLength} characters`;
  if (!channel.isWellFormed()) return 'channel name is not well-formed Unicode (lone surrogate)';
  // Every Redis key of a channel carries the hash tag `{<channel>}`; a name starting with `}` would make it
  // empty, and Redis Cluster would then spread the channel's keys over several slots.
  if (channel.charCodeAt(0) === 0x7d) return 'channel name begins with "}"';
  for (let i = 0; i < channel.length; i++) {
    const c = channel.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return `channel name holds a control character (U+${c.toString(16).padStart(4, '0').toUpperCase()})`;
  }
  return undefined;
}

/** Options for a channel, or undefined when it names a namespace that does not exist. */
export function resolveChannel(config: ChannelConfig, channel: string): NamespaceOptions | undefined {
  const ns = namespaceOf(channel);
  if (ns === '') return config.without_namespace;
  return Object.prototype.hasOwnProperty.call(config.namespaces, ns) ? config.namespaces[ns] : undefined;
}
