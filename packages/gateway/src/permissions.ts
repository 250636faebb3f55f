// Who may do what on a channel without a subscription token, by the namespace's options (Centrifugo rules).
import { channelUsers, type NamespaceOptions } from './channels';

export interface Actor {
  /** User id from the connection token; '' for an anonymous connection. */
  user: string;
  /** Insecure mode: every client permission check passes. */
  insecure: boolean;
}

/** Subscribing without a token. */
export function canSubscribe(ns: NamespaceOptions, actor: Actor, channel: string): boolean {
  if (actor.insecure) return true;
  if (ns.allow_user_limited_channels && actor.user !== '' && channelUsers(channel)?.includes(actor.user)) return true;
  if (!ns.allow_subscribe_for_client) return false;
  return actor.user !== '' || ns.allow_subscribe_for_anonymous;
}

/** Publishing from a client; documents are written only through doc.update. */
export function canPublish(ns: NamespaceOptions, actor: Actor, subscribed: boolean): boolean {
  return !ns.documents && canWrite(ns, actor, subscribed);
}

/** Updating a document: the namespace's publish rules apply. */
export function canUpdateDocument(ns: NamespaceOptions, actor: Actor, subscribed: boolean): boolean {
  return ns.documents && canWrite(ns, actor, subscribed);
}

/** Reading a document: whoever may subscribe to its channel, or already did. */
export function canReadDocument(ns: NamespaceOptions, actor: Actor, channel: string, subscribed: boolean): boolean {
  return ns.documents && (subscribed || canSubscribe(ns, actor, channel));
}

function canWrite(ns: NamespaceOptions, actor: Actor, subscribed: boolean): boolean {
  if (actor.insecure) return true;
  if (actor.user === '' && !ns.allow_publish_for_anonymous) return false;
  if (ns.allow_publish_for_client) return true;
  return ns.allow_publish_for_subscriber && subscribed;
}

export function canReadHistory(ns: NamespaceOptions, actor: Actor, subscribed: boolean): boolean {
  if (actor.insecure) return true;
  return ns.allow_history_for_client || (ns.allow_history_for_subscriber && subscribed);
}

export function canReadPresence(ns: NamespaceOptions, actor: Actor, subscribed: boolean): boolean {
  if (actor.insecure) return true;
  return ns.allow_presence_for_client || (ns.allow_presence_for_subscriber && subscribed);
}
