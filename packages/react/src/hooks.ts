/**
 * The hooks. Each holds what it needs for as long as its component is mounted, and lets go in
 * the effect's cleanup; StrictMode's double effects are absorbed by `Channels` (see there).
 * On a server every hook returns its initial value: effects, where the work happens, do not run.
 */
import type {
  ClientInfo,
  ClientState,
  HeraldClientError,
  Position,
  Publication,
  PublishOptions,
  RecoveredEvent,
  SubscriptionState,
} from '@herald/client';
import { useCallback, useContext, useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore } from 'react';
import { HeraldContext } from './context.js';

/** useLayoutEffect in the browser, useEffect on a server (where neither runs, but the former warns in React 18). */
const useIsomorphicLayoutEffect = typeof document === 'undefined' ? useEffect : useLayoutEffect;

export interface ChannelView<T> {
  readonly state: SubscriptionState;
  /** The last `keep` publications, oldest first (the handler sees every one). */
  readonly publications: readonly Publication<T>[];
  /** The outcome of the last resume (a reconnect): `recovered: false` means reload the state. */
  readonly recovered: RecoveredEvent | undefined;
  /** Why the hub refused the subscription (for example `forbidden`). */
  readonly error: HeraldClientError | undefined;
}

export interface UseChannelOptions {
  /** Publications kept in `publications`. Default 100; 0 keeps none (use the handler). */
  readonly keep?: number;
  /**
   * Open with up to this many publications from the channel's history (a chart that starts full),
   * then go live. Applies when this component starts the provider's subscription to the channel;
   * one joining a channel already followed gets what comes from then on. Default 0.
   */
  readonly rewind?: number;
}

/**
 * Follows `name` while mounted. `handler` runs once per publication, in order (the latest handler
 * given, without resubscribing when it changes).
 */
export function useChannel<T = unknown>(
  name: string,
  handler?: (publication: Publication<T>) => void,
  options: UseChannelOptions = {},
): ChannelView<T> {
  const ctx = useContext(HeraldContext);
  const keep = options.keep ?? 100;
  const rewind = options.rewind ?? 0;
  const handlerRef = useRef(handler);
  useIsomorphicLayoutEffect(() => {
    handlerRef.current = handler;
  });
  const [view, setView] = useState<ChannelView<T>>(INITIAL as ChannelView<T>);
  useEffect(() => {
    if (ctx === undefined) return;
    setView({ ...(INITIAL as ChannelView<T>), state: ctx.channels.state(name) });
    return ctx.channels.acquire(
      name,
      {
        publication: (p) => {
          handlerRef.current?.(p as Publication<T>);
          if (keep > 0) setView((v) => ({ ...v, publications: [...v.publications, p as Publication<T>].slice(-keep) }));
        },
        recovered: (recovered) => setView((v) => ({ ...v, recovered })),
        state: (state) => setView((v) => ({ ...v, state })),
        error: (error) => setView((v) => ({ ...v, error })),
      },
      false,
      rewind,
    );
  }, [ctx, name, keep, rewind]);
  return view;
}

const INITIAL: ChannelView<unknown> = {
  state: 'subscribing',
  publications: [],
  recovered: undefined,
  error: undefined,
};

/**
 * Who is on `name` now (the hub's presence, refreshed on every join and leave), or undefined until
 * known. Subscribes to the channel with join/leave events; not over long-polling, which has none.
 */
export function usePresence(name: string): readonly ClientInfo[] | undefined {
  const ctx = useContext(HeraldContext);
  const [clients, setClients] = useState<readonly ClientInfo[] | undefined>(undefined);
  useEffect(() => {
    if (ctx === undefined) return;
    let live = true;
    // Answers may come back out of order; only the latest request's answer is kept.
    let asked = 0;
    const refresh = (): void => {
      const mine = ++asked;
      ctx.client.presence(name).then(
        (list) => live && mine === asked && setClients(list),
        () => undefined, // a refused or failed read leaves the last known list
      );
    };
    const release = ctx.channels.acquire(
      name,
      {
        state: (s) => s === 'subscribed' && refresh(),
        recovered: refresh,
        join: refresh,
        leave: refresh,
      },
      true,
    );
    if (ctx.channels.state(name) === 'subscribed') refresh();
    return () => {
      live = false;
      release();
    };
  }, [ctx, name]);
  return clients;
}

const SERVER_STATE: ClientState = { state: 'connecting', transport: 'websocket' };
const noSubscribe = (): (() => void) => () => undefined;

/** The connection's state (`connecting`, `connected`, `disconnected`, `closed`), re-rendering on each change. */
export function useConnectionState(): ClientState {
  const client = useContext(HeraldContext)?.client;
  const subscribe = useCallback(
    (onChange: () => void) => (client === undefined ? () => undefined : client.on('state', onChange)),
    [client],
  );
  return useSyncExternalStore(
    client === undefined ? noSubscribe : subscribe,
    () => client?.state ?? SERVER_STATE,
    () => SERVER_STATE,
  );
}

export type PublishFunction = (channel: string, data: unknown, options?: PublishOptions) => Promise<Position | void>;

/**
 * A stable function that publishes through the provider's client (acknowledged once stored; see
 * `Herald.publish`). Rejects with `closed` when there is no client yet (on a server, or before
 * the provider's client exists).
 */
export function usePublish(): PublishFunction {
  const client = useContext(HeraldContext)?.client;
  const ref = useRef(client);
  useIsomorphicLayoutEffect(() => {
    ref.current = client;
  });
  return useCallback((channel, data, options) => {
    const c = ref.current;
    if (c === undefined)
      return Promise.reject(new Error('Herald: no client yet (usePublish outside a mounted HeraldProvider)'));
    return c.publish(channel, data, options);
  }, []);
}
