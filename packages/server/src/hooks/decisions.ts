/**
 * Where the hooks enter the hub's decisions, shared by every protocol (the command session, SSE
 * and long-poll requests, the HTTP API), so each rule is written once:
 * - connect: a client without a token, when a connect hook is configured, is whoever the hook says.
 * - subscribe: the credentials' `channels` patterns grant at once; a channel outside them goes to
 *   the subscribe hook when there is one (else it is refused as before).
 * - publish: within the `publish` patterns, every client publish goes to the publish hook, which
 *   may refuse it or replace its data before it is stored.
 * - rpc: to the rpc hook, its `data` back to the client.
 * - refresh: a hook-authenticated connection near its `expiresAt` is extended by the refresh hook.
 */
import { HeraldError, compilePatterns, isValidChannel, type ChannelMatcher } from '@herald/protocol';
import type { Credentials } from '../core/credentials.js';
import type { BackendHooks } from './backend-hooks.js';
import type { ConnectHookAnswer, HookClient, HookRequest } from './types.js';

/** Whether a client without a token goes to the connect hook. */
export function connectsByHook(hooks: BackendHooks | undefined, client: HookClient | undefined): client is HookClient {
  return client !== undefined && hooks?.has('connect') === true;
}

/** Credentials from the connect hook. `anonymous` channels stay open to every client, as with a token. */
export async function hookConnect(
  hooks: BackendHooks,
  client: HookClient,
  anonymous: ChannelMatcher,
  now: number,
): Promise<Credentials> {
  const answer = await hooks.call({ hook: 'connect', ...client });
  return hookCredentials(answer, client, anonymous, now);
}

export function hookCredentials(
  answer: ConnectHookAnswer,
  client: HookClient,
  anonymous: ChannelMatcher,
  now: number,
): Credentials {
  const own = compilePatterns(answer.channels);
  const expiresAt = answer.expiresAt === undefined ? undefined : answer.expiresAt * 1000;
  if (expiresAt !== undefined && expiresAt <= now)
    throw new HeraldError('unauthorized', 'the connect hook answered an expiresAt in the past');
  return {
    userId: answer.user,
    canSubscribe: (channel) => own(channel) || anonymous(channel),
    canPublish: compilePatterns(answer.publish),
    ...(answer.info === undefined ? {} : { info: answer.info, infoJson: JSON.stringify(answer.info) }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    hookClient: client,
    viaHook: true,
  };
}

/** The body fields every hook after connect shares. */
function base(credentials: Credentials, clientId: string | undefined): Omit<HookRequest, 'hook'> {
  const client = credentials.hookClient ?? { transport: 'unknown', remoteAddress: '', headers: {} };
  return { ...client, ...(clientId === undefined ? {} : { clientId }), user: credentials.userId };
}

/** What a subscribe the hook allowed carries into the hub. */
export interface SubscribeGrant {
  readonly granted: true;
  readonly member?: { readonly info?: unknown };
}

/**
 * undefined when the hook has no say (the patterns grant the channel, there is no subscribe hook,
 * or the name is invalid: the hub decides as before); else the hook's verdict, a rejection refusing.
 */
export function subscribeGrant(
  hooks: BackendHooks | undefined,
  credentials: Credentials,
  channel: unknown,
  clientId: string | undefined,
): Promise<SubscribeGrant> | undefined {
  if (hooks?.has('subscribe') !== true || !isValidChannel(channel) || credentials.canSubscribe(channel))
    return undefined;
  return hooks.call({ hook: 'subscribe', ...base(credentials, clientId), channel }).then((answer) => ({
    granted: true,
    ...(answer.info === undefined ? {} : { member: { info: answer.info } }),
  }));
}

/**
 * The publish as it should be stored: the same params without a publish hook (or when the hub
 * refuses it anyway: an invalid channel, outside the `publish` patterns, no data); else with the
 * data the hook answered, or refused by it.
 */
export async function hookedPublish<P extends { readonly channel?: unknown; readonly data?: unknown }>(
  hooks: BackendHooks | undefined,
  credentials: Credentials,
  params: P,
  clientId: string | undefined,
): Promise<P> {
  const { channel, data } = params;
  if (
    hooks?.has('publish') !== true ||
    !isValidChannel(channel) ||
    !credentials.canPublish(channel) ||
    data === undefined
  ) {
    return params;
  }
  const answer = await hooks.call({ hook: 'publish', ...base(credentials, clientId), channel, data });
  return Object.hasOwn(answer, 'data') ? { ...params, data: answer.data } : params;
}

const MAX_METHOD = 200;

/** An RPC to the backend: `{data}` of the rpc hook's answer (null when it gave none). */
export async function rpc(
  hooks: BackendHooks | undefined,
  credentials: Credentials,
  params: Readonly<Record<string, unknown>>,
  clientId: string | undefined,
): Promise<{ data: unknown }> {
  const { method, data } = params;
  if (typeof method !== 'string' || method.length === 0 || method.length > MAX_METHOD) {
    throw new HeraldError('bad_request', `method must be a string of 1 to ${MAX_METHOD} characters`);
  }
  if (hooks?.has('rpc') !== true) throw new HeraldError('not_found', 'this hub has no rpc hook');
  const answer = await hooks.call({
    hook: 'rpc',
    ...base(credentials, clientId),
    method,
    ...(data === undefined ? {} : { data }),
  });
  return { data: answer.data ?? null };
}

/** The refresh hook's new expiry for a hook-authenticated connection, epoch ms. */
export async function hookRefresh(
  hooks: BackendHooks,
  credentials: Credentials,
  clientId: string,
): Promise<Credentials> {
  const answer = await hooks.call({ hook: 'refresh', ...base(credentials, clientId) });
  return { ...credentials, expiresAt: answer.expiresAt * 1000 };
}
