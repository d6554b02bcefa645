/**
 * A TCP proxy on loopback that tests use to cut connections (network failures), to stall one
 * direction of them (a client that stops reading, a half-dead path) and to refuse WebSocket
 * upgrades (a proxy that blocks them), without touching the hub.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** `toClient`: bytes from the target (the hub) to the client; `toTarget`: the other way. */
export type Direction = 'toClient' | 'toTarget';

export interface ProxyOptions {
  /** Answer HTTP upgrade requests with 403 instead of forwarding them. */
  readonly refuseUpgrades?: boolean;
}

export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  /** Stalled reading sides, each with the socket it forwards to once it flows again. */
  readonly #stalled = new Map<Socket, Socket>();
  /** Undefined while paused: new connections are refused, as if nothing listened. */
  #target: { host: string; port: number } | undefined;
  #stallNext: Direction | undefined;
  refuseUpgrades: boolean;
  port = 0;

  constructor(targetPort: number, options: ProxyOptions = {}, targetHost = '127.0.0.1') {
    this.#target = { host: targetHost, port: targetPort };
    this.refuseUpgrades = options.refuseUpgrades ?? false;
    this.#server = createServer((client) => this.#accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Sends new connections elsewhere (a hub restarted on another port); ends a pause. */
  retarget(port: number, host = '127.0.0.1'): void {
    this.#target = { host, port };
  }

  /**
   * Refuses new connections until the next `retarget`; open ones go on. Unlike pointing at a
   * port that was free a moment ago, nothing else on the machine can start answering there.
   */
  pause(): void {
    this.#target = undefined;
  }

  /** Cuts every open connection, as a network failure would. */
  cutAll(): number {
    const n = this.#pairs.size;
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    this.#pairs.clear();
    return n;
  }

  /**
   * Stops forwarding `direction` on every open connection while keeping it open: the proxy stops
   * reading that side, so its sender meets TCP backpressure once the kernel buffers are full (a
   * client that stopped reading) and its receiver hears nothing (a half-dead path). Connections
   * opened later are not stalled. Returns how many were stalled.
   */
  stall(direction: Direction): number {
    let n = 0;
    for (const pair of this.#pairs) if (this.#stallPair(pair, direction)) n++;
    return n;
  }

  /**
   * Stalls `direction` on the next connection opened through the proxy only (a request that
   * reaches the hub and whose answer never comes back, on a fresh connection).
   */
  stallNextConnection(direction: Direction): void {
    this.#stallNext = direction;
  }

  #stallPair([client, upstream]: [Socket, Socket], direction: Direction): boolean {
    const [from, to] = direction === 'toClient' ? [upstream, client] : [client, upstream];
    if (this.#stalled.has(from)) return false;
    from.unpipe(to);
    from.pause();
    this.#stalled.set(from, to);
    return true;
  }

  /** Forwards `direction` again on the stalled connections still open, starting with what was held. */
  flow(direction: Direction): void {
    for (const [client, upstream] of this.#pairs) {
      const from = direction === 'toClient' ? upstream : client;
      const to = this.#stalled.get(from);
      if (to === undefined) continue;
      this.#stalled.delete(from);
      from.pipe(to);
    }
  }

  get connections(): number {
    return this.#pairs.size;
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    client.on('error', () => client.destroy());
    // A reset, as a closed port answers: a plain close makes fetch try again until it times out.
    if (this.#target === undefined) return void client.resetAndDestroy();
    if (!this.refuseUpgrades) return this.#pipe(client, undefined);
    // Peek at the request head to refuse upgrades, like a proxy without WebSocket support.
    client.once('data', (head: Buffer) => {
      const text = head.toString('latin1');
      if (/^upgrade:\s*websocket/im.test(text)) {
        client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      this.#pipe(client, head);
    });
  }

  #pipe(client: Socket, head: Buffer | undefined): void {
    if (this.#target === undefined) return void client.resetAndDestroy();
    const upstream = connect(this.#target);
    const pair: [Socket, Socket] = [client, upstream];
    this.#pairs.add(pair);
    const drop = (): void => {
      this.#pairs.delete(pair);
      this.#stalled.delete(client);
      this.#stalled.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', drop);
    client.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    if (head !== undefined) upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
    if (this.#stallNext !== undefined) {
      this.#stallPair(pair, this.#stallNext);
      this.#stallNext = undefined;
    }
  }
}
