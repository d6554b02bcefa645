/**
 * A Web-standard `fetch` handler (Request → Promise<Response>) for the hub's HTTP routes: SSE,
 * long-poll, the server API, health and metrics. For Hono, Next.js route handlers and any other
 * framework that speaks Request/Response, where WebSocket upgrades are not available: clients
 * use the `sse` and `poll` transports there (`/ws` answers 400, as it does without an upgrade).
 *
 * The seam is `HeraldServer.handleRequest`: the request is handed over as a node:http
 * IncomingMessage and the answer read back from a response bridge (./response-bridge.ts), so every
 * route, check and limit is the one the hub's own listener runs; nothing is reimplemented here.
 */
import { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import type { HeraldServer } from '../server.js';
import { checkPrefix, stripPrefix } from './attach.js';
import { ResponseBridge } from './response-bridge.js';

export interface FetchHandlerOptions {
  /** Path prefix of the route the handler is mounted on, such as `/api/herald`. Default: none. */
  readonly prefix?: string;
  /**
   * The client's address, for the per-address connection limits (`maxConnectionsPerIp`,
   * `connectionRatePerIp`). Frameworks expose it differently (Hono: `getConnInfo`); absent, every
   * request counts as one unknown address, so leave those limits off or supply this.
   */
  readonly clientAddress?: (request: Request) => string | undefined;
}

export type FetchHandler = (request: Request) => Promise<Response>;

const NOT_FOUND = JSON.stringify({ error: { code: 'not_found', message: 'no route here' } });

/** The handler; it starts the hub (`herald.start()`) on first use. `herald.close()` ends its streams. */
export function heraldFetchHandler(herald: HeraldServer, options: FetchHandlerOptions = {}): FetchHandler {
  const prefix = options.prefix === undefined ? undefined : checkPrefix(options.prefix);
  return async (request) => {
    const url = new URL(request.url);
    const inner = prefix === undefined ? url.pathname + url.search : stripPrefix(url.pathname + url.search, prefix);
    if (inner === undefined) {
      return new Response(NOT_FOUND, { status: 404, headers: { 'Content-Type': 'application/json; charset=utf-8' } });
    }
    await herald.start();
    const socket = new PassThrough() as unknown as Socket;
    Object.defineProperty(socket, 'remoteAddress', { value: options.clientAddress?.(request) });
    const req = toIncomingMessage(request, inner, url, socket);
    const res = new ResponseBridge(req);
    // The request's socket stands for the client's connection: it closes when the answer is done,
    // or when the client goes (the body is cancelled or the request aborted). Long-polls wait on it.
    res.once('close', () => socket.destroy());
    request.signal.addEventListener('abort', () => res.destroy(), { once: true });
    herald.handleRequest(req, res.asServerResponse());
    return res.response;
  };
}

function toIncomingMessage(request: Request, path: string, url: URL, socket: Socket): IncomingMessage {
  const req = new IncomingMessage(socket);
  req.method = request.method;
  req.url = path;
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  const headers: Record<string, string> = {};
  for (const [name, value] of request.headers) headers[name] = value;
  headers.host ??= url.host;
  req.headers = headers;
  void pumpBody(request, req);
  return req;
}

/** Feeds the request body into the IncomingMessage; stops reading once the hub stopped listening. */
async function pumpBody(request: Request, req: IncomingMessage): Promise<void> {
  if (request.body === null) {
    req.push(null);
    return;
  }
  const reader = request.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || req.destroyed) break;
      req.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
    req.push(null);
  } catch (error) {
    req.destroy(error instanceof Error ? error : new Error(String(error)));
  } finally {
    reader.releaseLock();
  }
}
