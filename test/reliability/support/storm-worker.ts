/**
 * A load process for the reconnect storm: holds many WebSocket clients, each of which connects
 * (retrying with exponential backoff and jitter, honouring Retry-After on 429), subscribes to its
 * channel, remembers its stream position, and after any disconnect comes back and resumes from
 * that position. It reports counters to the parent over IPC; it never decides pass or fail.
 */
import WebSocket from 'ws';

export interface StormConfig {
  readonly url: string;
  readonly token: string;
  readonly clients: number;
  /** Index of this worker's first client (channel and source address are derived from it). */
  readonly firstClient: number;
  readonly channels: number;
  /** Source addresses 127.0.0.<addressBase + (client % addresses)>. */
  readonly addressBase: number;
  readonly addresses: number;
}

export interface StormCounters {
  connected: number;
  /** Clients whose first subscribe was answered. */
  subscribed: number;
  /** Clients whose subscribe-with-position after a disconnect was answered. */
  resumed: number;
  recoveredTrue: number;
  recoveredFalse: number;
  refused429: number;
  refusedOther: number;
  socketErrors: number;
  attempts: number;
  disconnects: number;
  /** ms from the first disconnect of each client to its resumed answer: max and sum (for the mean). */
  resumeMsMax: number;
  resumeMsSum: number;
}

const config = JSON.parse(process.env.HERALD_STORM ?? '{}') as StormConfig;
const counters: StormCounters = {
  connected: 0,
  subscribed: 0,
  resumed: 0,
  recoveredTrue: 0,
  recoveredFalse: 0,
  refused429: 0,
  refusedOther: 0,
  socketErrors: 0,
  attempts: 0,
  disconnects: 0,
  resumeMsMax: 0,
  resumeMsSum: 0,
};
let stopping = false;

class Client {
  readonly #channel: string;
  readonly #localAddress: string;
  #position: { offset: number; epoch: string } | undefined;
  #failures = 0;
  #lostAt: number | undefined;
  #resumed = false;
  #subscribed = false;
  #ws: WebSocket | undefined;

  constructor(index: number) {
    this.#channel = `storm:${index % config.channels}`;
    this.#localAddress = `127.0.0.${config.addressBase + (index % config.addresses)}`;
  }

  start(delayMs: number): void {
    setTimeout(() => this.#connect(), delayMs);
  }

  close(): void {
    this.#ws?.terminate();
  }

  #connect(): void {
    if (stopping) return;
    counters.attempts++;
    const ws = new WebSocket(config.url, { localAddress: this.#localAddress, handshakeTimeout: 30_000 });
    this.#ws = ws;
    let opened = false;
    let retryAfterMs: number | undefined;
    ws.on('unexpected-response', (_req, res) => {
      if (res.statusCode === 429) {
        counters.refused429++;
        const seconds = Number(res.headers['retry-after']);
        if (Number.isFinite(seconds)) retryAfterMs = seconds * 1000;
      } else counters.refusedOther++;
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => {
      if (!opened) counters.socketErrors++;
    });
    ws.on('open', () => {
      opened = true;
      counters.connected++;
      ws.send(JSON.stringify({ id: 1, method: 'connect', params: { token: config.token } }));
      const since = this.#position;
      ws.send(
        JSON.stringify({ id: 2, method: 'subscribe', params: { channel: this.#channel, ...(since ? { since } : {}) } }),
      );
    });
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as any;
      if (message.id === 2 && message.result !== undefined) {
        this.#failures = 0;
        this.#position = { offset: message.result.offset, epoch: message.result.epoch };
        if (message.result.recovered !== undefined && this.#lostAt !== undefined && !this.#resumed) {
          this.#resumed = true;
          counters.resumed++;
          if (message.result.recovered === true) counters.recoveredTrue++;
          else counters.recoveredFalse++;
          const ms = Date.now() - this.#lostAt;
          counters.resumeMsSum += ms;
          counters.resumeMsMax = Math.max(counters.resumeMsMax, ms);
        } else if (!this.#subscribed) {
          this.#subscribed = true;
          counters.subscribed++;
        }
      } else if (message.push === 'pub') {
        this.#position = { offset: message.pub.offset, epoch: message.pub.epoch };
      }
    });
    ws.on('close', () => {
      if (opened) {
        counters.connected--;
        counters.disconnects++;
        this.#lostAt ??= Date.now();
      }
      if (stopping) return;
      // Exponential backoff with full jitter, at least what the hub asked for.
      this.#failures++;
      const exp = Math.min(5_000, 100 * 2 ** Math.min(this.#failures, 6));
      const delay = Math.max(retryAfterMs ?? 0, Math.random() * exp);
      setTimeout(() => this.#connect(), opened && this.#failures === 1 ? Math.random() * 50 : delay);
    });
  }
}

const clients: Client[] = [];
for (let i = 0; i < config.clients; i++) {
  const client = new Client(config.firstClient + i);
  clients.push(client);
  // The first connections spread over a second; the storm itself is the restart.
  client.start(Math.random() * 1000);
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'counters') process.send?.({ type: 'counters', counters });
  if (message.type === 'stop') {
    stopping = true;
    for (const client of clients) client.close();
    setTimeout(() => process.exit(0), 200);
  }
});
process.send?.({ type: 'started' });
