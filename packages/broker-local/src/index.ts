/**
 * `@herald/broker-local`: the embedded broker shared by the worker processes of one
 * `herald serve --workers N` (docs/scale-out.md, "Every core"). The primary runs a
 * `LocalBrokerHost`, which owns history, offsets, idempotency, presence, revocations and metadata;
 * each worker reaches it over a unix socket with `createLocalBackend`. No Redis, no network.
 */
import type { Broker, PresenceStore, RevocationStore } from '@herald/server';
import { LocalLink } from './link.js';
import { LocalBroker, LocalPresence, LocalRevocations } from './local-broker.js';

export { LocalBrokerHost, type LocalBrokerHostOptions } from './host.js';
export { LocalBroker, LocalPresence, LocalRevocations } from './local-broker.js';
export { LocalLink } from './link.js';

export interface LocalBackend {
  readonly broker: Broker;
  readonly presence: PresenceStore;
  readonly revocations: RevocationStore;
}

/** One worker's broker, presence and revocations, sharing one link to the host at `path`. */
export function createLocalBackend(path: string, options: { readonly maxPending?: number } = {}): LocalBackend {
  const link = new LocalLink(path, options.maxPending);
  return { broker: new LocalBroker(link), presence: new LocalPresence(link), revocations: new LocalRevocations(link) };
}
