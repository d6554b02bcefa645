/**
 * Test support: a server (a hub, a hub with Socket.IO, a site) that can be killed and started
 * again at the same address, as a crashed or redeployed node looks to its clients. With the
 * memory broker the new hub has no history and new epochs, so clients must hear recovered: false.
 *
 * The address is a TCP front (a loopback proxy) that stays bound for the test's whole life; each
 * server behind it listens on a port of its own. Rebinding the old server's port instead is a
 * race: the suite runs test files in parallel, and another file's hub (same test secrets) can be
 * handed that port by listen(0) in the moment it is free, so clients would resume on a stranger.
 */
import { TcpProxy } from './tcp-proxy.ts';

export interface Listening {
  readonly port: number;
  close(): Promise<void>;
}

export class RestartableAt<T extends Listening> {
  readonly #front: TcpProxy;
  readonly #launch: () => Promise<T>;
  #current: T | undefined;

  private constructor(front: TcpProxy, launch: () => Promise<T>, current: T) {
    this.#front = front;
    this.#launch = launch;
    this.#current = current;
  }

  static async start<T extends Listening>(launch: () => Promise<T>): Promise<RestartableAt<T>> {
    const current = await launch();
    const front = new TcpProxy(current.port);
    await front.listen();
    return new RestartableAt(front, launch, current);
  }

  /** The server behind the front now (a new one after each restart). */
  get current(): T {
    if (this.#current === undefined) throw new Error('the server is down');
    return this.#current;
  }

  get port(): number {
    return this.#front.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /**
   * Closes the server (a hub tells its clients 1001 / herald.disconnect, through the front).
   * Until `up`, new connections are refused, as by a port with nothing listening.
   */
  async down(): Promise<void> {
    this.#front.pause();
    const current = this.#current;
    this.#current = undefined;
    await current?.close();
  }

  /** Starts a fresh server behind the front (`launch` overrides the one given to `start`). */
  async up(launch: () => Promise<T> = this.#launch): Promise<T> {
    const current = await launch();
    this.#current = current;
    this.#front.retarget(current.port);
    return current;
  }

  async restart(launch?: () => Promise<T>): Promise<T> {
    await this.down();
    return this.up(launch);
  }

  async close(): Promise<void> {
    await this.#current?.close();
    await this.#front.close();
  }
}
