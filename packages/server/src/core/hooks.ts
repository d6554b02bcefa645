/**
 * Typed lifecycle hooks: how integrations (webhooks, push, the admin page) follow the hub without
 * subclassing it or wrapping its methods. Hooks run synchronously on the hub's path, so they must
 * be cheap and must not throw; a hook that throws is logged and the hub goes on.
 */
import type { DisconnectInfo } from '@herald/protocol';
import type { PublicationRecord } from '../broker/broker.js';
import type { Credentials } from './credentials.js';
import type { Session, Subscription } from './session.js';

export interface HubHooks {
  /** A client connection was accepted (after its token was verified). */
  sessionOpened?(session: Session): void;
  /** A client connection ended; `info` says why. */
  sessionClosed?(session: Session, info: DisconnectInfo): void;
  /** A subscription is live on this node (long-poll waiters included; check `subscription.present`). */
  subscribed?(subscription: Subscription): void;
  /** A subscription ended on this node. */
  unsubscribed?(subscription: Subscription): void;
  /**
   * This node accepted and stored a publication; `publisher` is set for client publishes.
   * `extensions` holds the parsed values of the publish extension fields registered with
   * `hub.addPublishExtension` that the publish carried (never part of the delivered publication).
   */
  published?(record: PublicationRecord, publisher: Credentials | undefined, extensions: PublishExtensions): void;
}

/** Parsed publish extension fields by name (docs/protocol-extensions.md); empty when none was given. */
export type PublishExtensions = Readonly<Record<string, unknown>>;

/**
 * Parses one publish extension field before anything is stored. Throws a HeraldError to refuse
 * the publish (it then answers that error, and nothing is published).
 */
export type PublishExtensionParser = (
  value: unknown,
  context: { readonly channel: string; readonly publisher: Credentials | undefined },
) => unknown;
