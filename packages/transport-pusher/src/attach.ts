/**
 * Serves the Pusher Channels protocol on the hub's own port, through the hub's extension points
 * only (docs/architecture.md, "Adding a protocol"): the WebSocket at `/app/{key}`, the HTTP API
 * at `/apps/{id}/...`, and pusher-js's HTTP fallbacks under `/pusher/app/{key}/`. See docs/pusher.md.
 */
import type { HeraldServer } from '@herald/server';
import { PusherApps, type PusherApp } from './apps.js';
import type { PusherHooks } from './connection.js';
import { PusherFallback } from './fallback.js';
import { PusherApi } from './http-api.js';
import { PresenceWatch } from './presence-watch.js';
import { Relay } from './relay.js';
import { PusherWebhooks } from './webhooks.js';
import { PusherWebSocketEndpoint } from './websocket.js';

export interface PusherOptions {
  /** The apps this hub serves (at least one). */
  readonly apps: readonly PusherApp[];
  /** Seconds of client silence before the hub pings it (`activity_timeout`). Default 120, as Pusher. */
  readonly activityTimeoutSeconds?: number;
}

export interface PusherAttachment {
  readonly apps: PusherApps;
  /** Ends every Pusher connection (the hub's drain does this too). */
  close(): void;
}

/** Frames may exceed the largest `data` by this much (the envelope, the channel, the auth). */
const FRAME_OVERHEAD_BYTES = 16 * 1024;

export function attachPusher(server: HeraldServer, options: PusherOptions): PusherAttachment {
  const apps = new PusherApps(options.apps);
  if (apps.size === 0) throw new TypeError('Invalid option "apps": at least one Pusher app is required');
  const activityTimeoutSeconds = options.activityTimeoutSeconds ?? 120;
  if (!Number.isInteger(activityTimeoutSeconds) || activityTimeoutSeconds < 1 || activityTimeoutSeconds > 3600) {
    throw new TypeError('Invalid option "activityTimeoutSeconds": must be an integer from 1 to 3600');
  }
  const ctx = server.context;
  const webhooks = new PusherWebhooks(ctx.hub, apps, ctx.logger);
  const presenceWatch = new PresenceWatch(ctx.hub);
  const hooks: PusherHooks = { cacheMiss: (app, channel) => webhooks.cacheMiss(app, channel), presenceWatch };
  const websocket = new PusherWebSocketEndpoint(ctx, apps, {
    activityTimeoutSeconds,
    hooks,
    maxFrameBytes: ctx.hub.limits.maxMessageBytes + FRAME_OVERHEAD_BYTES,
  });
  server.addUpgradeHandler('/app/', (req, socket, head) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://herald.invalid');
    } catch {
      socket.destroy();
      return;
    }
    websocket.handleUpgrade(req, socket, head, url);
  });
  const api = new PusherApi(ctx.hub, apps);
  const fallback = new PusherFallback(ctx, apps, hooks, activityTimeoutSeconds, (req) => server.admit(req));
  fallback.relay = new Relay(ctx.hub, fallback);
  server.addRoutes((req, res, url) => {
    if (url.pathname.startsWith('/apps/')) return api.handle(req, res, url);
    if (url.pathname.startsWith('/pusher/')) return fallback.handle(req, res, url);
    return false;
  });
  const close = (): void => {
    websocket.close();
    fallback.close();
    presenceWatch.close();
    void webhooks.close();
  };
  server.httpServer.once('close', close);
  return { apps, close };
}
