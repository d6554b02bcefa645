/**
 * Pusher test support: a real hub with the Pusher protocol attached on a loopback port, the
 * official `pusher` server SDK pointed at it, and real pusher-js clients whose channel and user
 * authorizations are signed by that SDK (as an app's auth endpoint would). Nothing is mocked.
 */
import { after, before } from 'node:test';
import { HeraldServer, type HeraldOptions } from '@herald/server';
import PusherServer from 'pusher';
import PusherModule from 'pusher-js';
import { API_KEY, JWT_SECRET, until } from '../../../test/support/hub.ts';
import { attachPusher, type PusherApp, type PusherAttachment, type PusherOptions } from '../src/index.ts';

/** pusher-js's Node build (CommonJS, whose default export the types do not describe as a class). */
export const PusherClient = PusherModule as unknown as new (key: string, options: object) => PusherClient;
type PusherClient = any;

export const APP: PusherApp = { id: '1001', key: 'app-key-1001', secret: 'app-secret-1001-abcdef' };
export const OTHER_APP: PusherApp = { id: '1002', key: 'app-key-1002', secret: 'app-secret-1002-abcdef' };

export interface PusherHub {
  readonly server: HeraldServer;
  readonly pusher: PusherAttachment;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startPusherHub(
  options: Partial<HeraldOptions> = {},
  pusher: Partial<PusherOptions> = {},
): Promise<PusherHub> {
  const server = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET, ...options });
  const attachment = attachPusher(server, { apps: [APP, OTHER_APP], ...pusher });
  const address = await server.listen(0, '127.0.0.1');
  return {
    server,
    pusher: attachment,
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    close: () => server.close(),
  };
}

/**
 * For a `describe` whose tests share one hub: the hub starts before them, and the pusher-js
 * clients they open with `client()` close after them, then the hub.
 */
export function sharedPusherHub(): {
  readonly hub: PusherHub;
  /** A client of the hub, or of `port` (a proxy in front of it). */
  client(options?: ClientOptions, port?: number): TestClient;
} {
  let hub: PusherHub | undefined;
  const clients: TestClient[] = [];
  before(async () => {
    hub = await startPusherHub();
  });
  after(async () => {
    for (const c of clients) c.close();
    await hub?.close();
  });
  const started = (): PusherHub => {
    if (hub === undefined) throw new Error('the hub starts before the tests');
    return hub;
  };
  return {
    get hub(): PusherHub {
      return started();
    },
    client(options: ClientOptions = {}, port = started().port): TestClient {
      const c = new TestClient(port, options);
      clients.push(c);
      return c;
    },
  };
}

/** The official server SDK (`pusher` on npm), talking to the hub on `port`. */
export function serverSdk(port: number, app: PusherApp = APP): PusherServer {
  return new PusherServer({
    appId: app.id,
    key: app.key,
    secret: app.secret,
    host: '127.0.0.1',
    port: String(port),
    useTLS: false,
  });
}

export type Transport = 'ws' | 'xhr_streaming' | 'xhr_polling';

export interface ClientOptions {
  readonly app?: PusherApp;
  /** pusher-js's enabledTransports; default WebSocket only. */
  readonly transports?: readonly Transport[];
  /** The presence member this client's auth endpoint names. */
  readonly member?: { user_id: string; user_info?: unknown };
  /** The user `pusher.signin()` authenticates as. */
  readonly user?: { id: string; [field: string]: unknown };
  /** Signs channel authorizations with a wrong secret. */
  readonly badAuth?: boolean;
  /** The port for HTTP fallbacks, when another than the hub's (a proxy). */
  readonly httpPort?: number;
  readonly wsPort?: number;
}

export interface Seen {
  readonly channel: string;
  readonly event: string;
  readonly data: any;
  readonly metadata?: any;
}

/** A real pusher-js client whose auth endpoint is the `pusher` SDK; it records every channel event. */
export class TestClient {
  readonly pusher: PusherClient;
  readonly seen: Seen[] = [];
  readonly states: string[] = [];
  readonly errors: any[] = [];

  constructor(port: number, options: ClientOptions = {}) {
    const app = options.app ?? APP;
    const signer = serverSdk(port, options.badAuth === true ? { ...app, secret: 'not-the-secret-at-all' } : app);
    this.pusher = new PusherClient(app.key, {
      cluster: 'local',
      wsHost: '127.0.0.1',
      wsPort: options.wsPort ?? port,
      httpHost: '127.0.0.1',
      httpPort: options.httpPort ?? port,
      forceTLS: false,
      disableStats: true,
      enabledTransports: [...(options.transports ?? ['ws'])] as any,
      channelAuthorization: {
        endpoint: '/unused',
        transport: 'ajax',
        customHandler: ({ socketId, channelName }: { socketId: string; channelName: string }, callback: any) => {
          const member = channelName.startsWith('presence-') ? (options.member as { user_id: string }) : undefined;
          callback(null, signer.authorizeChannel(socketId, channelName, member));
        },
      },
      userAuthentication: {
        endpoint: '/unused',
        transport: 'ajax',
        customHandler: ({ socketId }: { socketId: string }, callback: any) => {
          callback(null, signer.authenticateUser(socketId, options.user ?? { id: 'nobody' }));
        },
      },
    } as any);
    this.pusher.connection.bind('state_change', ({ current }: { current: string }) => this.states.push(current));
    this.pusher.connection.bind('error', (error: unknown) => this.errors.push(error));
  }

  get state(): string {
    return this.pusher.connection.state;
  }

  get socketId(): string {
    return this.pusher.connection.socket_id;
  }

  async connected(): Promise<void> {
    await until(() => this.state === 'connected', `pusher-js to connect (states: ${this.states.join(', ')})`, 15_000);
  }

  /** Subscribes and resolves with the subscription_succeeded data (or rejects with the subscription error). */
  subscribe(name: string): Promise<any> {
    const channel = this.pusher.subscribe(name);
    channel.bind_global((event: string, data: unknown, metadata?: unknown) => {
      this.seen.push({ channel: name, event, data, ...(metadata === undefined ? {} : { metadata }) });
    });
    return new Promise((resolve, reject) => {
      channel.bind('pusher:subscription_succeeded', resolve);
      channel.bind('pusher:subscription_error', reject);
    });
  }

  events(channel: string, event?: string): Seen[] {
    return this.seen.filter((s) => s.channel === channel && (event === undefined || s.event === event));
  }

  async waitFor(channel: string, event: string, count = 1, timeoutMs = 10_000): Promise<Seen[]> {
    await until(() => this.events(channel, event).length >= count, `${count} ${event} on ${channel}`, timeoutMs);
    return this.events(channel, event);
  }

  close(): void {
    this.pusher.disconnect();
  }
}
