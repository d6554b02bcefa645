/** HTTP helpers for tests that pick their source address (127.0.0.x) or must see raw statuses. */
import { request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';

export interface Answer {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  /** The body for non-200 answers; '' for streams (left open, see `res`). */
  readonly body: string;
  readonly res: IncomingMessage;
}

/** GET from a chosen source address. A 200 stream is left open (destroy `res` to end it). */
export function httpGet(
  port: number,
  path: string,
  options: { localAddress?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        headers: options.headers ?? {},
        agent: false,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        if (res.statusCode === 200 && /event-stream/.test(res.headers['content-type'] ?? '')) {
          resolve({ status: 200, headers: res.headers, body: '', res });
          return;
        }
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, res }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export interface WsAttempt {
  readonly ok: boolean;
  readonly status?: number;
  readonly retryAfter?: string;
  readonly socket?: WebSocket;
}

/** Opens a WebSocket from a chosen source address; a refused upgrade reports its HTTP status. */
export function openWs(url: string, localAddress?: string, headers: Record<string, string> = {}): Promise<WsAttempt> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, ...(localAddress ? { localAddress } : {}) });
    ws.on('error', () => resolve({ ok: false, status: 0 }));
    ws.once('open', () => resolve({ ok: true, socket: ws }));
    ws.once('unexpected-response', (_req, res) => {
      const retryAfter = res.headers['retry-after'];
      resolve({ ok: false, status: res.statusCode ?? 0, ...(retryAfter === undefined ? {} : { retryAfter }) });
      res.resume();
      ws.terminate();
    });
  });
}

/** A raw TCP connection from a chosen source address. */
export function tcp(port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
    socket.setNoDelay(true);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves with the ms from now until `socket` closes, and what it was sent first. */
export function whenClosed(socket: Socket): Promise<{ afterMs: number; head: string }> {
  const started = Date.now();
  let head = '';
  socket.on('data', (d: Buffer) => {
    if (head.length < 200) head += d.toString('latin1');
  });
  socket.on('error', () => undefined);
  return new Promise((resolve) => socket.once('close', () => resolve({ afterMs: Date.now() - started, head })));
}
