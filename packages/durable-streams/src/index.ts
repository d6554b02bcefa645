/**
 * `@herald/durable-streams`: the Durable Streams protocol (github.com/durable-streams/durable-streams,
 * PROTOCOL.md) served by a Herald hub under `/ds/`, with Herald channels underneath: a stream at
 * `/ds/<path>` is the channel `ds:<path>` (names.ts), so Herald's own clients can follow it, and
 * every node sharing the broker serves it (docs/durable-streams.md).
 */
import type { HeraldServer } from '@herald/server';
import type { Access } from './access.js';
import { DurableStreamsHandler } from './http.js';
import type { StreamStore } from './store.js';

export { channelForPath, pathForChannel, CHANNEL_PREFIX } from './names.js';
export { formatOffset, parseOffset } from './offsets.js';
export type { Access } from './access.js';

export interface DurableStreamsOptions {
  /** `auth` (default): Herald's API key and client JWTs apply (access.ts); `open`: anyone may do anything. */
  readonly access?: Access;
  /** The path streams live under. Default `/ds`. */
  readonly mount?: string;
  /** How long a long-poll waits for data before it answers 204. Default 25 s. */
  readonly longPollSeconds?: number;
  /** How long an SSE response lives before the server ends it (clients reconnect). Default 60 s. */
  readonly sseSeconds?: number;
  /** Largest request body (an append, or a create's initial content). Default 512 KiB. */
  readonly maxBodyBytes?: number;
  /** A catch-up read stops adding data past this many bytes. Default 1 MiB. */
  readonly maxReadBytes?: number;
}

export const DURABLE_STREAMS_DEFAULTS = {
  access: 'auth',
  mount: '/ds',
  longPollSeconds: 25,
  sseSeconds: 60,
  maxBodyBytes: 512 * 1024,
  maxReadBytes: 1024 * 1024,
} as const;

export interface DurableStreams {
  readonly store: StreamStore;
  /** Stops serving the mount (the hub goes on). */
  detach(): void;
}

/** Serves Durable Streams on `server` under the mount, through its public routes API. */
export function attachDurableStreams(server: HeraldServer, options: DurableStreamsOptions = {}): DurableStreams {
  const o = { ...DURABLE_STREAMS_DEFAULTS, ...options };
  if (!/^\/[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(o.mount)) throw new Error(`mount "${o.mount}" is not a path`);
  for (const [name, value] of [
    ['longPollSeconds', o.longPollSeconds],
    ['sseSeconds', o.sseSeconds],
    ['maxBodyBytes', o.maxBodyBytes],
    ['maxReadBytes', o.maxReadBytes],
  ] as const) {
    if (!(typeof value === 'number' && value > 0 && Number.isFinite(value)))
      throw new Error(`${name} must be positive`);
  }
  const handler = new DurableStreamsHandler(server, {
    mount: o.mount,
    access: o.access,
    apiKey: server.options.apiKey,
    maxBodyBytes: o.maxBodyBytes,
    maxReadBytes: o.maxReadBytes,
    longPollMs: o.longPollSeconds * 1000,
    sseMs: o.sseSeconds * 1000,
    ssePingMs: Math.min(15_000, o.sseSeconds * 500),
  });
  if (o.access === 'open') {
    server.logger.warn(
      { mount: o.mount },
      'durable streams are open: anyone who reaches the hub may create, write and delete streams',
    );
  }
  const detach = server.addRoutes(async (req, res, url) => {
    if (!handler.owns(url.pathname)) return false;
    await handler.handle(req, res, url);
    return true;
  });
  return { store: handler.store, detach };
}
