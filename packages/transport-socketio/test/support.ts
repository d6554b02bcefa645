/**
 * Socket.IO test support: a real hub with Socket.IO attached on a loopback port, and a thin
 * recorder around the real `socket.io-client` (acks as promises, every event kept in order).
 */
import { HeraldServer, type HeraldOptions } from '@herald/server';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import { API_KEY, JWT_SECRET, until, type TestHub } from '../../../test/support/hub.ts';
import { attachSocketIo, type SocketIoAttachment, type SocketIoOptions } from '../src/index.ts';

export type Mode = 'polling' | 'websocket' | 'upgrade';
export const MODES: readonly Mode[] = ['polling', 'websocket', 'upgrade'];

export function transportsOf(mode: Mode): ('polling' | 'websocket')[] {
  return mode === 'polling' ? ['polling'] : mode === 'websocket' ? ['websocket'] : ['polling', 'websocket'];
}

export interface SioHub extends TestHub {
  readonly socketIo: SocketIoAttachment;
}

/** A hub with Socket.IO attached, on a loopback port of its own (see hub-restart.ts to restart one). */
export async function startSioHub(options: Partial<HeraldOptions> = {}, sio: SocketIoOptions = {}): Promise<SioHub> {
  const server = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET, ...options });
  const socketIo = attachSocketIo(server, sio);
  const address = await server.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${address.port}`;
  return {
    server,
    socketIo,
    url,
    wsUrl: `ws://127.0.0.1:${address.port}/ws`,
    port: address.port,
    close: () => server.close(),
  };
}

export interface Received {
  readonly event: string;
  readonly args: any[];
}

/** A real socket.io-client socket that records everything the hub sends it. */
export class SioClient {
  readonly socket: Socket;
  readonly received: Received[] = [];
  readonly connectErrors: any[] = [];
  readonly disconnects: string[] = [];
  connects = 0;

  constructor(url: string, mode: Mode, options: Partial<ManagerOptions & SocketOptions> = {}) {
    this.socket = io(url, {
      transports: transportsOf(mode),
      upgrade: mode === 'upgrade',
      forceNew: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      ...options,
    });
    this.socket.onAny((event: string, ...args: any[]) => this.received.push({ event, args }));
    this.socket.on('connect', () => this.connects++);
    this.socket.on('connect_error', (error: any) => this.connectErrors.push(error));
    this.socket.on('disconnect', (reason) => this.disconnects.push(reason));
  }

  static async connect(
    url: string,
    mode: Mode,
    options: Partial<ManagerOptions & SocketOptions> = {},
  ): Promise<SioClient> {
    const client = new SioClient(url, mode, options);
    await until(() => client.socket.connected || client.connectErrors.length > 0, 'the socket.io connection', 10_000);
    if (!client.socket.connected) {
      client.close();
      throw new Error(`connect failed: ${JSON.stringify(client.connectErrors[0]?.data ?? client.connectErrors[0])}`);
    }
    if (mode === 'upgrade') {
      await until(() => client.transport === 'websocket', 'the upgrade to WebSocket', 10_000);
    }
    return client;
  }

  get transport(): string | undefined {
    return this.socket.io.engine?.transport?.name;
  }

  /** Emits a command and resolves with its ack. */
  call(event: string, ...args: unknown[]): Promise<any> {
    return this.socket.timeout(10_000).emitWithAck(event, ...args);
  }

  /** Emits a command and returns its result, throwing on `{ok: false}`. */
  async ok(event: string, params: unknown): Promise<any> {
    const answer = await this.call(event, params);
    if (answer?.ok !== true) throw new Error(`${event} failed: ${JSON.stringify(answer)}`);
    return answer;
  }

  /** Publications received, as `pub` objects, from `message` and named events alike. */
  publications(channel?: string): any[] {
    const pubs: any[] = [];
    for (const { event, args } of this.received) {
      if (event.startsWith('herald.')) continue;
      const pub = event === 'message' ? args[0] : args[1];
      if (pub !== undefined && (channel === undefined || pub.channel === channel)) pubs.push(pub);
    }
    return pubs;
  }

  events(name: string): any[][] {
    return this.received.filter((r) => r.event === name).map((r) => r.args);
  }

  close(): void {
    this.socket.disconnect();
  }
}

/**
 * What an application does on top of socket.io-client to never miss a publication: on every
 * `connect` (the first and each automatic reconnect) it subscribes from the last position it has.
 * The position moves with each publication received; an ack sets it only when nothing is replayed
 * (a fresh subscribe, or `recovered: false`, after which the client reloads its state).
 */
export class ResumingSubscriber {
  readonly client: SioClient;
  readonly channel: string;
  readonly acks: any[] = [];
  #position: { offset: number; epoch: string } | undefined;

  constructor(client: SioClient, channel: string) {
    this.client = client;
    this.channel = channel;
    client.socket.onAny((_event: string, ...args: any[]) => {
      const pub = args.length === 1 ? args[0] : args[1];
      if (pub?.channel === channel && typeof pub.offset === 'number') {
        this.#position = { offset: pub.offset, epoch: pub.epoch };
      }
    });
    client.socket.on('connect', () => this.#subscribe());
    if (client.socket.connected) this.#subscribe();
  }

  get position(): { offset: number; epoch: string } | undefined {
    return this.#position;
  }

  offsets(): number[] {
    return this.client.publications(this.channel).map((p) => p.offset);
  }

  #subscribe(): void {
    const since = this.#position;
    this.client.socket.emit('subscribe', { channel: this.channel, ...(since ? { since } : {}) }, (ack: any) => {
      this.acks.push(ack);
      if (ack?.ok === true && ack.recovered !== true) this.#position = { offset: ack.offset, epoch: ack.epoch };
    });
  }
}
