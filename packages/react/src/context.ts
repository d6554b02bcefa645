/**
 * The provider. Safe to import and render on a server: nothing here touches `window`, and the
 * client is created in an effect (effects do not run during server rendering).
 */
import { Herald, type HeraldOptions } from '@herald/client';
import { createContext, createElement, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { Channels } from './channels.js';

export interface HeraldContextValue {
  readonly client: Herald;
  readonly channels: Channels;
}

export const HeraldContext = createContext<HeraldContextValue | undefined>(undefined);

export type HeraldProviderProps =
  /** A client the app created (and closes) itself. */
  | { readonly client: Herald; readonly children?: ReactNode }
  /** Or the provider creates the client when mounted and closes it when unmounted. */
  | { readonly url: string; readonly options?: HeraldOptions; readonly children?: ReactNode };

const channelsByClient = new WeakMap<Herald, Channels>();

function valueFor(client: Herald): HeraldContextValue {
  let channels = channelsByClient.get(client);
  if (channels === undefined) channelsByClient.set(client, (channels = new Channels(client)));
  return { client, channels };
}

interface Owned {
  readonly url: string;
  readonly value: HeraldContextValue;
  closeTimer: ReturnType<typeof setTimeout> | undefined;
}

export function HeraldProvider(props: HeraldProviderProps): ReactNode {
  const given = 'client' in props ? props.client : undefined;
  const url = 'url' in props ? props.url : undefined;
  const [owned, setOwned] = useState<HeraldContextValue | undefined>(undefined);
  const ownedRef = useRef<Owned | undefined>(undefined);
  // Options are read when the client is created; a token source is a function the client calls
  // for each new token, so changing options does not need a new client (a new URL does).
  const optionsRef = useRef('options' in props ? props.options : undefined);
  optionsRef.current = 'options' in props ? props.options : undefined;

  useEffect(() => {
    if (url === undefined) return;
    let current = ownedRef.current;
    if (current !== undefined && current.url === url) {
      // StrictMode's second setup, right after its cleanup: keep the client it was about to close.
      clearTimeout(current.closeTimer);
      current.closeTimer = undefined;
    } else {
      current = { url, value: valueFor(new Herald(url, optionsRef.current ?? {})), closeTimer: undefined };
      ownedRef.current = current;
      setOwned(current.value);
    }
    const held = current;
    return () => {
      held.closeTimer = setTimeout(() => {
        if (ownedRef.current === held) ownedRef.current = undefined;
        held.value.client.close();
      }, 0);
    };
  }, [url]);

  const value = given !== undefined ? valueFor(given) : owned;
  return createElement(HeraldContext.Provider, { value }, props.children);
}

/** The client of the nearest provider; undefined before the provider's client exists (and on the server). */
export function useHerald(): Herald | undefined {
  return useContext(HeraldContext)?.client;
}
