/**
 * An HTTP reverse proxy on loopback that behaves like the proxies real deployments put in front
 * of a hub: one that refuses WebSocket upgrades (403), and one that buffers responses, holding an
 * event stream's body until the response ends, as a proxy ignoring `X-Accel-Buffering: no` does.
 * Anything else is forwarded as it is (upgrades, when allowed, as a raw tunnel). Unlike the TCP
 * proxy, it speaks HTTP, so it can tell a stream from a request.
 */
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface HttpProxyOptions {
  /** Answer WebSocket upgrades with 403 instead of forwarding them. */
  readonly refuseUpgrades?: boolean;
  /** Hold the body of `text/event-stream` responses until they end (headers go through). */
  readonly bufferEventStreams?: boolean;
  /** Pages the proxy answers itself (path to HTML), on the hub's origin as the browser sees it. */
  readonly pages?: ReadonlyMap<string, string>;
  /** More hubs: HTTP requests go to the target and these in turn (round robin), as a load balancer without sticky sessions. */
  readonly alsoTo?: readonly number[];
}

export class HttpProxy {
  readonly #server: Server;
  readonly #agent = new Agent({ keepAlive: true });
  readonly #sockets = new Set<Duplex>();
  readonly #targetPort: number;
  readonly #options: HttpProxyOptions;
  /** Upgrades refused, and event streams held, so far. */
  refusedUpgrades = 0;
  bufferedStreams = 0;
  /** HTTP requests forwarded to each port. */
  readonly forwarded = new Map<number, number>();
  #turn = 0;
  port = 0;

  constructor(targetPort: number, options: HttpProxyOptions = {}) {
    this.#targetPort = targetPort;
    this.#options = options;
    this.#server = createServer((req, res) => this.#forward(req, res));
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
    this.#server.on('connection', (socket: Socket) => this.#track(socket));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    this.#agent.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #track(socket: Duplex): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #forward(req: IncomingMessage, res: ServerResponse): void {
    const page = this.#options.pages?.get(req.url ?? '');
    if (page !== undefined) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(page);
      return;
    }
    const ports = [this.#targetPort, ...(this.#options.alsoTo ?? [])];
    const port = ports[this.#turn++ % ports.length] as number;
    this.forwarded.set(port, (this.forwarded.get(port) ?? 0) + 1);
    const upstream = request(
      {
        host: '127.0.0.1',
        port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: this.#agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        res.flushHeaders();
        const stream = /^text\/event-stream/.test(String(answer.headers['content-type'] ?? ''));
        if (!stream || this.#options.bufferEventStreams !== true) {
          answer.pipe(res);
          return;
        }
        this.bufferedStreams++;
        const held: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => held.push(chunk));
        answer.on('end', () => res.end(Buffer.concat(held)));
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.#options.refuseUpgrades === true) {
      this.refusedUpgrades++;
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const upstream = connect(this.#targetPort, '127.0.0.1');
    this.#track(upstream);
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) upstream.write(head);
    socket.pipe(upstream);
    upstream.pipe(socket);
  }
}
