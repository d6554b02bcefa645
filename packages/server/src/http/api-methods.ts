/**
 * The server API's commands, by name (docs/protocol-extensions.md, "Batch publishing"). Each one
 * is both a route, `POST /api/<name>` with its params as the body and its result as the answer,
 * and a command `{"method": "<name>", "params": {...}}` of `POST /api/batch`, answered
 * `{"result": ...}` or `{"error": {code, message}}` in the batch's replies. A new command is one
 * more entry in `API_METHODS`.
 */
import { HeraldError, isValidChannel, type WireError } from '@herald/protocol';
import type { Credentials } from '../core/credentials.js';
import type { Hub, PublishInput } from '../core/hub.js';
import type { BackendHooks } from '../hooks/backend-hooks.js';
import { hookedPublish } from '../hooks/decisions.js';
import { CONNECTION_METHODS } from './api-connections.js';

/**
 * Who is calling: the backend (API key) or a client with a JWT (or a session the connect hook
 * accepted). A client's publishes go through the publish hook, when `hooks` has one.
 */
export type ApiCaller =
  | { readonly kind: 'server' }
  | { readonly kind: 'client'; readonly credentials: Credentials; readonly hooks?: BackendHooks };

/**
 * Publishes as `caller`. A client publish with a publish hook waits for the hook's verdict, so
 * (unlike other publishes) it is not handed to the broker before the first `await`.
 */
function publishAs(hub: Hub, params: PublishInput, caller: ApiCaller): ReturnType<Hub['publish']> {
  if (caller.kind === 'client' && caller.hooks?.has('publish') === true) {
    const { credentials, hooks } = caller;
    return hookedPublish(hooks, credentials, params, undefined).then((p) => hub.publish(p, credentials));
  }
  return hub.publish(params, publisherOf(caller));
}

export type ApiParams = Readonly<Record<string, unknown>>;

export interface ApiMethod {
  /** `client`: a client token may call it too, within its own permissions; `server`: the API key only. */
  readonly access: 'server' | 'client';
  /**
   * Whether a batch waits for every earlier command to finish before starting this one. Off, the
   * batch starts each command as soon as the one before it has started (see `run`).
   */
  readonly sequential?: boolean;
  /** Publications the call makes, counted against the per-request limit (`maxBatchItems`). */
  cost(params: ApiParams): number;
  /**
   * Runs the call; the promise settles once it has taken effect (a publication: once stored).
   * Whatever must keep its order with the commands after it in a batch happens before the first
   * `await`: the batch starts the next command then. `hub.publish` calls its broker before its
   * first `await`, and every broker keeps a channel's publications in call order, so the
   * publications of a batch are stored in command order per channel.
   */
  run(hub: Hub, params: ApiParams, caller: ApiCaller): Promise<unknown>;
}

/** A broadcast's answer for one channel. */
export type BroadcastResult =
  | { readonly channel: string; readonly offset?: number; readonly epoch?: string }
  | { readonly channel: string; readonly error: WireError };

function publisherOf(caller: ApiCaller): Credentials | undefined {
  return caller.kind === 'client' ? caller.credentials : undefined;
}

/** A thrown value as the wire's error object; anything not a HeraldError is an internal error. */
export function wireError(error: unknown): WireError {
  return error instanceof HeraldError ? error.toWire() : { code: 'internal', message: 'internal error' };
}

/** Publishes one publication to each of `channels` (the idempotency key, if any, applies per channel). */
const broadcast: ApiMethod = {
  access: 'client',
  cost: (params) => (Array.isArray(params.channels) ? Math.max(1, params.channels.length) : 1),
  async run(hub, params, caller) {
    const { channels, ...rest } = params;
    if (!Array.isArray(channels) || channels.length === 0) {
      throw new HeraldError('bad_request', 'channels must be a non-empty array of channel names');
    }
    if (rest.data === undefined) throw new HeraldError('bad_request', 'data is required');
    if ('channel' in rest)
      throw new HeraldError('bad_request', 'a broadcast names its channels in channels, not channel');
    const seen = new Set<string>();
    const publisher = publisherOf(caller);
    // Started one after the other, without waiting: the broker gathers them into its batches.
    const outcomes = channels.map((channel: unknown) => {
      if (isValidChannel(channel)) {
        if (seen.has(channel)) {
          return Promise.reject(new HeraldError('bad_request', `channel ${channel} is listed twice`));
        }
        seen.add(channel);
      }
      return publisher === undefined
        ? hub.publish({ ...rest, channel } as PublishInput)
        : publishAs(hub, { ...rest, channel } as PublishInput, caller);
    });
    const settled = await Promise.allSettled(outcomes);
    const results: BroadcastResult[] = settled.map((outcome, i) => {
      const channel = String(channels[i]);
      return outcome.status === 'fulfilled'
        ? { channel, ...outcome.value }
        : { channel, error: wireError(outcome.reason) };
    });
    return { results };
  },
};

const publish: ApiMethod = {
  access: 'client',
  cost: () => 1,
  run: (hub, params, caller) => publishAs(hub, params, caller),
};

export const API_METHODS: ReadonlyMap<string, ApiMethod> = new Map([
  ['publish', publish],
  ['broadcast', broadcast],
  ...CONNECTION_METHODS,
]);
