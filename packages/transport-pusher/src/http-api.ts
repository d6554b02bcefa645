/**
 * Pusher's HTTP API (the one Pusher's server SDKs call), with Pusher's request signing:
 * POST /apps/{id}/events and /batch_events, GET /apps/{id}/channels, /channels/{name} and
 * /channels/{name}/users, POST /apps/{id}/users/{user}/terminate_connections. Every request is
 * checked against its app's secret (signatures.ts) before anything is read or published; answers
 * and errors are shaped as Pusher's (errors are text, as Pusher sends them).
 *
 * Publications are stored in Herald's history (so cache channels and Herald's own clients can
 * read them back); `socket_id` keeps an event from the connection that caused it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CloseCode, ERROR_CODES, HeraldError, closeInfo } from '@herald/protocol';
import { answerInTurn, readBodyBytes, type Credentials, type Hub } from '@herald/server';
import type { PusherApp, PusherApps } from './apps.js';
import { appPrefix, channelType, heraldChannel, isValidPusherChannel, pusherChannel, userChannel } from './channels.js';
import type { PusherOrigin } from './messages.js';
import { apiRequestProblem } from './signatures.js';

/** Pusher's limits: channels per event, events per batch. */
const MAX_CHANNELS_PER_EVENT = 100;
const MAX_BATCH_EVENTS = 10;
const MAX_EVENT_NAME = 200;
/** A request body may hold ten events of the largest data, plus their envelopes. */
const BODY_OVERHEAD_BYTES = 64 * 1024;

type Answer = { status: number; body: unknown };

export class PusherApi {
  readonly #hub: Hub;
  readonly #apps: PusherApps;
  readonly #maxBodyBytes: number;

  constructor(hub: Hub, apps: PusherApps) {
    this.#hub = hub;
    this.#apps = apps;
    this.#maxBodyBytes = hub.limits.maxMessageBytes * MAX_BATCH_EVENTS + BODY_OVERHEAD_BYTES;
  }

  /** Answers a request under `/apps/`; false when the path is not Pusher's. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const match = /^\/apps\/([^/]+)(\/.*)$/.exec(url.pathname);
    if (match === null) return false;
    try {
      const app = this.#apps.byId(decodeURIComponent(match[1] as string));
      if (app === undefined) return send(res, { status: 404, body: 'Unknown app' });
      const body = await readBodyBytes(req, this.#maxBodyBytes);
      const rawQuery = url.search.startsWith('?') ? url.search.slice(1) : url.search;
      const problem = apiRequestProblem(app, req.method ?? 'GET', url.pathname, rawQuery, body, Date.now() / 1000);
      if (problem !== undefined) return send(res, { status: 401, body: problem });
      const answer = await this.#route(app, req.method ?? 'GET', match[2] as string, url.searchParams, body);
      // Backends trigger events in floods: under load, a turn's answers leave together.
      answerInTurn(res, () => send(res, answer));
    } catch (error) {
      answerInTurn(res, () => send(res, thrown(error)));
    }
    return true;
  }

  async #route(app: PusherApp, method: string, path: string, query: URLSearchParams, body: Buffer): Promise<Answer> {
    if (path === '/events') return method === 'POST' ? this.#events(app, json(body)) : notAllowed('POST');
    if (path === '/batch_events') return method === 'POST' ? this.#batch(app, json(body)) : notAllowed('POST');
    if (path === '/channels') return method === 'GET' ? this.#channels(app, query) : notAllowed('GET');
    let m = /^\/channels\/([^/]+)$/.exec(path);
    if (m !== null) return method === 'GET' ? this.#channel(app, decode(m[1] as string), query) : notAllowed('GET');
    m = /^\/channels\/([^/]+)\/users$/.exec(path);
    if (m !== null) return method === 'GET' ? this.#users(app, decode(m[1] as string)) : notAllowed('GET');
    m = /^\/users\/([^/]+)\/terminate_connections$/.exec(path);
    if (m !== null) return method === 'POST' ? this.#terminate(app, decode(m[1] as string)) : notAllowed('POST');
    return { status: 404, body: `No route for ${method} /apps/${app.id}${path}` };
  }

  async #events(app: PusherApp, body: Record<string, unknown>): Promise<Answer> {
    const channels = body.channels ?? (body.channel === undefined ? undefined : [body.channel]);
    if (!Array.isArray(channels) || channels.length === 0 || channels.length > MAX_CHANNELS_PER_EVENT) {
      throw new HeraldError('bad_request', `channels must be a list of 1 to ${MAX_CHANNELS_PER_EVENT} channel names`);
    }
    const event = { ...body, channels };
    const infos = await Promise.all(channels.map((channel) => this.#trigger(app, { ...event, channel })));
    if (body.info === undefined) return { status: 200, body: {} };
    return { status: 200, body: { channels: Object.fromEntries(channels.map((c, i) => [c as string, infos[i]])) } };
  }

  async #batch(app: PusherApp, body: Record<string, unknown>): Promise<Answer> {
    const batch = body.batch;
    if (!Array.isArray(batch) || batch.length === 0 || batch.length > MAX_BATCH_EVENTS) {
      throw new HeraldError('bad_request', `batch must be a list of 1 to ${MAX_BATCH_EVENTS} events`);
    }
    for (const item of batch) {
      if (typeof item !== 'object' || item === null)
        throw new HeraldError('bad_request', 'each batch event must be an object');
    }
    // Checked in full before any is published, so a bad event publishes nothing of its batch.
    const events = (batch as Record<string, unknown>[]).map((item) => checkedEvent(item));
    const infos = [];
    for (const event of events) infos.push(await this.#publish(app, event));
    const anyInfo = (batch as Record<string, unknown>[]).some((item) => item.info !== undefined);
    return { status: 200, body: anyInfo ? { batch: infos } : {} };
  }

  async #trigger(app: PusherApp, body: Record<string, unknown>): Promise<object> {
    return this.#publish(app, checkedEvent(body));
  }

  async #publish(app: PusherApp, event: CheckedEvent): Promise<object> {
    const channel = heraldChannel(app.id, event.channel);
    // Text that holds a JSON object or array is stored as that value, so Herald's own clients get
    // it parsed; Pusher clients get the same JSON text back (messages.ts). Encrypted channels'
    // payloads are relayed exactly as sent.
    const data = channelType(event.channel) === 'encrypted' ? event.data : storedData(event.data);
    const publisher =
      event.socketId === undefined ? undefined : originPublisher(channel, { socket_id: event.socketId });
    await this.#hub.publish({ channel, event: event.name, data }, publisher);
    return event.info === undefined ? {} : this.#info(event.channel, channel, event.info);
  }

  async #info(name: string, channel: string, attributes: readonly string[]): Promise<object> {
    const clients = await this.#hub.presence(channel);
    const info: Record<string, number> = {};
    if (attributes.includes('subscription_count')) info.subscription_count = clients.length;
    if (attributes.includes('user_count') && channelType(name) === 'presence') info.user_count = userIds(clients).size;
    return info;
  }

  async #channels(app: PusherApp, query: URLSearchParams): Promise<Answer> {
    const filter = query.get('filter_by_prefix') ?? '';
    const attributes = infoAttributes(query.get('info'));
    if (attributes.includes('user_count') && !filter.startsWith('presence-')) {
      throw new HeraldError('bad_request', 'info=user_count needs filter_by_prefix=presence-');
    }
    const prefix = appPrefix(app.id);
    const channels: Record<string, object> = {};
    for (const { channel } of await this.#hub.channels()) {
      const name = pusherChannel(prefix, channel);
      if (name === undefined || !name.startsWith(filter) || channelType(name) === 'user') continue;
      channels[name] = attributes.length === 0 ? {} : await this.#info(name, channel, attributes);
    }
    return { status: 200, body: { channels } };
  }

  async #channel(app: PusherApp, name: string, query: URLSearchParams): Promise<Answer> {
    if (!isValidPusherChannel(name)) throw new HeraldError('bad_channel', 'Invalid channel name');
    const attributes = infoAttributes(query.get('info'));
    if (attributes.includes('user_count') && channelType(name) !== 'presence') {
      throw new HeraldError('bad_request', 'user_count is only for presence channels');
    }
    const clients = await this.#hub.presence(heraldChannel(app.id, name));
    const body: Record<string, unknown> = { occupied: clients.length > 0 };
    if (attributes.includes('subscription_count')) body.subscription_count = clients.length;
    if (attributes.includes('user_count')) body.user_count = userIds(clients).size;
    return { status: 200, body };
  }

  async #users(app: PusherApp, name: string): Promise<Answer> {
    if (!isValidPusherChannel(name) || channelType(name) !== 'presence') {
      throw new HeraldError('bad_request', 'users are listed for presence channels only');
    }
    const clients = await this.#hub.presence(heraldChannel(app.id, name));
    return { status: 200, body: { users: [...userIds(clients)].map((id) => ({ id })) } };
  }

  /** Ends every connection of the signed-in user on every node (the hub's cluster-wide disconnect). */
  async #terminate(app: PusherApp, userId: string): Promise<Answer> {
    if (userId === '') throw new HeraldError('bad_request', 'a user id is required');
    await this.#hub.disconnectUser(
      `${appPrefix(app.id)}${userId}`,
      closeInfo(CloseCode.Unauthorized, 'Connection terminated by the server'),
    );
    return { status: 200, body: {} };
  }
}

interface CheckedEvent {
  readonly channel: string;
  readonly name: string;
  readonly data: unknown;
  readonly socketId?: string;
  readonly info?: readonly string[];
}

function checkedEvent(body: Record<string, unknown>): CheckedEvent {
  const { channel, name, data, socket_id: socketId, info } = body;
  if (!isValidPusherChannel(channel))
    throw new HeraldError('bad_channel', `Invalid channel name ${JSON.stringify(channel)}`);
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_EVENT_NAME) {
    throw new HeraldError('bad_request', `name must be an event name of 1 to ${MAX_EVENT_NAME} characters`);
  }
  if (name.startsWith('pusher:') || name.startsWith('pusher_internal:')) {
    throw new HeraldError('bad_request', 'event names starting with pusher: are reserved');
  }
  if (data === undefined) throw new HeraldError('bad_request', 'data is required');
  if (socketId !== undefined && (typeof socketId !== 'string' || !/^\d+\.\d+$/.test(socketId))) {
    throw new HeraldError('bad_request', 'socket_id must look like 123.456');
  }
  if (info !== undefined && typeof info !== 'string') throw new HeraldError('bad_request', 'info must be a string');
  return {
    channel,
    name,
    data,
    ...(socketId === undefined ? {} : { socketId }),
    ...(info === undefined ? {} : { info: infoAttributes(info) }),
  };
}

/** The server's publications keep the socket_id they exclude in `info` (messages.ts). */
function originPublisher(channel: string, origin: PusherOrigin): Credentials {
  const info = { pusher: origin };
  return {
    userId: '',
    info,
    infoJson: JSON.stringify(info),
    canSubscribe: () => false,
    canPublish: (c) => c === channel,
  };
}

/** The user channel an event to one user goes to (`sendToUser`). */
export function userChannelOf(appId: string, userId: string): string {
  return heraldChannel(appId, userChannel(userId));
}

function storedData(data: unknown): unknown {
  if (typeof data !== 'string') return data;
  const first = data.trimStart()[0];
  if (first !== '{' && first !== '[') return data;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

function userIds(clients: readonly { userId: string }[]): Set<string> {
  return new Set(clients.map((c) => c.userId).filter((id) => id !== ''));
}

function infoAttributes(value: string | null | undefined): string[] {
  if (value === null || value === undefined || value === '') return [];
  return value.split(',').map((s) => s.trim());
}

function json(body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HeraldError('bad_request', 'the body must be a JSON object');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HeraldError('bad_request', 'the body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return '';
  }
}

function notAllowed(method: string): Answer {
  return { status: 405, body: `Use ${method}` };
}

function thrown(error: unknown): Answer {
  if (error instanceof HeraldError) return { status: ERROR_CODES[error.code], body: error.message };
  return { status: 500, body: 'internal error' };
}

function send(res: ServerResponse, answer: Answer): true {
  const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
  if (res.headersSent) {
    res.end();
    return true;
  }
  res.writeHead(answer.status, {
    'Content-Type': typeof answer.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
  return true;
}
