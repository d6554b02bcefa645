/**
 * A WebSocket subscriber that resumes by itself, as a client library would: when its connection
 * drops it connects again and subscribes with `since` = the last position it received. It keeps
 * every publication it was given, in arrival order, so tests can check "every offset exactly once".
 */
import WebSocket from 'ws';

export class ResumingWsSubscriber {
  /** Offsets in arrival order: the answer's `publications` first, then live pushes. */
  readonly offsets: number[] = [];
  /** `recovered` of every subscribe answer that carried `since`. */
  readonly recovered: boolean[] = [];
  /** Error answers to subscribe (there should be none). */
  readonly errors: string[] = [];
  connects = 0;
  drops = 0;
  epoch: string | undefined;
  /** True while subscribed on an open connection. */
  live = false;
  #stopped = false;
  #socket: WebSocket | undefined;
  readonly done: Promise<void>;

  constructor(
    readonly url: () => string,
    readonly token: string,
    readonly channel: string,
    /** Bounds the number of connections whatever happens. */
    readonly maxConnects = 100,
  ) {
    this.done = this.#run();
  }

  get last(): number {
    return this.offsets.at(-1) ?? 0;
  }

  async #run(): Promise<void> {
    while (!this.#stopped && this.connects < this.maxConnects) {
      this.connects++;
      await this.#session();
      this.live = false;
      if (!this.#stopped) {
        this.drops++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** One connection: connect, subscribe (with since once there is a position), then read until it closes. */
  #session(): Promise<void> {
    return new Promise<void>((resolve) => {
      const socket = new WebSocket(this.url());
      this.#socket = socket;
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
      socket.on('open', () => {
        socket.send(JSON.stringify({ id: 1, method: 'connect', params: { token: this.token } }));
        const since = this.epoch === undefined ? undefined : { offset: this.last, epoch: this.epoch };
        socket.send(
          JSON.stringify({
            id: 2,
            method: 'subscribe',
            params: { channel: this.channel, ...(since ? { since } : {}) },
          }),
        );
      });
      socket.on('message', (raw) => {
        const message = JSON.parse(raw.toString());
        if (message.id === 2) {
          if (message.error) {
            this.errors.push(JSON.stringify(message.error));
            socket.close();
            return;
          }
          const result = message.result;
          if (result.recovered !== undefined) this.recovered.push(result.recovered);
          for (const pub of result.publications ?? []) this.offsets.push(pub.offset);
          this.epoch = result.epoch;
          this.live = true;
        } else if (message.push === 'pub' && message.pub.channel === this.channel) {
          this.offsets.push(message.pub.offset);
        }
      });
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#socket?.terminate();
    await this.done;
  }
}

/** `[from, from + 1, ..., to]`. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}
