/** A minimal protocol client over the real `ws` package, for tests: commands, replies, pushes. */
import WebSocket from 'ws';

export interface Reply {
  id: number;
  result?: any;
  error?: { code: string; message: string };
}

export class WsTestClient {
  readonly socket: WebSocket;
  readonly pushes: any[] = [];
  readonly replies = new Map<number, Reply>();
  closeCode: number | undefined;
  closeReason = '';
  #nextId = 1;
  #waiters = new Map<number, (reply: Reply) => void>();
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    this.socket = new WebSocket(url, options);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
      this.socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => {
      this.socket.once('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve(code);
      });
    });
    this.socket.on('error', () => undefined);
    this.socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (typeof message.id === 'number') {
        this.replies.set(message.id, message);
        this.#waiters.get(message.id)?.(message);
        this.#waiters.delete(message.id);
      } else {
        this.pushes.push(message);
      }
    });
  }

  static async connect(url: string, token?: string, options?: WebSocket.ClientOptions): Promise<WsTestClient> {
    const client = new WsTestClient(url, options);
    await client.opened;
    const reply = await client.call('connect', token === undefined ? {} : { token });
    if (reply.error) throw new Error(`connect failed: ${reply.error.code}`);
    return client;
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.#nextId++;
    const reply = new Promise<Reply>((resolve, reject) => {
      this.#waiters.set(id, resolve);
      void this.closed.then((code) => reject(new Error(`socket closed (${code}) before reply to ${method}`)));
    });
    this.socket.send(JSON.stringify({ id, method, params }));
    return reply;
  }

  /** Calls and returns the result, throwing on an error reply. */
  async ok(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const reply = await this.call(method, params);
    if (reply.error) throw new Error(`${method} failed: ${reply.error.code} ${reply.error.message}`);
    return reply.result;
  }

  publications(channel?: string): any[] {
    return this.pushes
      .filter((p) => p.push === 'pub' && (channel === undefined || p.pub.channel === channel))
      .map((p) => p.pub);
  }

  close(): void {
    this.socket.close();
  }
}
