/**
 * Embedding: the hub on an application's own `node:http` server (Express, Fastify, Koa or plain
 * node:http), on the same port, under a path prefix. Requests and upgrades under the prefix go to
 * the hub; everything else reaches the application exactly as before.
 *
 * How: the server's existing `request` listeners (the application) are taken off and called from
 * one dispatcher, so a request under the prefix is seen by the hub only, never by the app's router
 * too (Node calls every listener, so adding a second one would make both answer). Upgrades under
 * the prefix are the hub's; other upgrades go to the app's own upgrade listeners if it has any,
 * or are refused with 404 (an upgrade nobody takes would otherwise hang).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { refuseUpgrade } from '../http/respond.js';
import type { HeraldServer } from '../server.js';

export interface AttachOptions {
  /** Path prefix the hub answers under, such as `/realtime`. Must start with `/`; no trailing `/`. */
  readonly prefix: string;
}

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** A prefix as `/name` or `/a/b`: checked at attach time, with an error that names the problem. */
export function checkPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || !/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*[^/]$/.test(prefix) || prefix.includes('//')) {
    throw new TypeError(`Invalid option "prefix": "${String(prefix)}" must start with "/" and not end with "/"`);
  }
  return prefix;
}

/**
 * The path under the prefix (`/realtime/sse?x` → `/sse?x`), or undefined when the URL is not
 * under it. `/realtimeX` is not under `/realtime`.
 */
export function stripPrefix(url: string | undefined, prefix: string): string | undefined {
  if (url === undefined || !url.startsWith(prefix)) return undefined;
  const rest = url.slice(prefix.length);
  if (rest === '') return '/';
  if (rest.startsWith('/')) return rest;
  if (rest.startsWith('?')) return '/' + rest;
  return undefined;
}

/**
 * Puts `herald` on `server` under `options.prefix`, starts the hub (`herald.start()`) and resolves
 * with a function that takes it off again. Call it before or after the server listens. The hub's
 * clients then connect to `http(s)://host:port/<prefix>` (WebSocket, SSE, long-poll, server API).
 * `herald.close()` ends the hub's clients; the application's server stays open.
 */
export async function attachHerald(herald: HeraldServer, server: Server, options: AttachOptions): Promise<() => void> {
  const prefix = checkPrefix(options.prefix);
  const appRequest = server.listeners('request') as RequestListener[];
  const appUpgrade = server.listeners('upgrade') as UpgradeListener[];
  server.removeAllListeners('request');
  server.removeAllListeners('upgrade');

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const inner = stripPrefix(req.url, prefix);
    if (inner === undefined) {
      for (const listener of appRequest) listener.call(server, req, res);
      return;
    }
    req.url = inner;
    herald.handleRequest(req, res);
  };
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const inner = stripPrefix(req.url, prefix);
    if (inner === undefined) {
      if (appUpgrade.length === 0) return refuseUpgrade(socket, 'not_found', 'no WebSocket endpoint here');
      for (const listener of appUpgrade) listener.call(server, req, socket, head);
      return;
    }
    req.url = inner;
    herald.handleUpgrade(req, socket, head);
  };
  server.on('request', onRequest);
  server.on('upgrade', onUpgrade);
  await herald.start();
  return () => {
    server.off('request', onRequest);
    server.off('upgrade', onUpgrade);
    for (const listener of appRequest) server.on('request', listener);
    for (const listener of appUpgrade) server.on('upgrade', listener);
  };
}
