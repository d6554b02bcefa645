/**
 * The part of node:http's ServerResponse that the hub's routes use (writeHead, write, end,
 * writableLength, headersSent, destroy, 'close', 'drain'), written into a Web `Response` whose body
 * is a ReadableStream. Backpressure carries through: a write completes only when the stream has
 * room (a bounded queue of HIGH_WATER_BYTES), so `writableLength` grows while the client does not
 * read, and the hub's slow-client bound (`maxQueueBytes`) applies as on its own listener.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';

/** Bytes the response stream holds before writes wait for the client. */
const HIGH_WATER_BYTES = 64 * 1024;
/** Headers that belong to one HTTP/1.1 connection; the framework frames the answer itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);
/** Statuses whose Response must not have a body. */
const NULL_BODY = new Set([101, 204, 205, 304]);

export class ResponseBridge extends Writable {
  statusCode = 200;
  headersSent = false;
  /** No socket: the transports then write through the response itself. */
  readonly socket = null;
  readonly chunkedEncoding = false;
  readonly req: IncomingMessage;
  readonly response: Promise<Response>;
  readonly #headers = new Headers();
  #resolve!: (response: Response) => void;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** A write waiting for room in the stream. */
  #waiting: (() => void) | undefined;

  constructor(req: IncomingMessage) {
    super({ highWaterMark: 16 * 1024 });
    this.req = req;
    this.response = new Promise((resolve) => (this.#resolve = resolve));
  }

  /** The routes are typed against ServerResponse; they use only what this class has. */
  asServerResponse(): ServerResponse {
    return this as unknown as ServerResponse;
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    this.#headers.delete(name);
    for (const v of Array.isArray(value) ? value : [value]) this.#headers.append(name, String(v));
    return this;
  }

  getHeader(name: string): string | undefined {
    return this.#headers.get(name) ?? undefined;
  }

  removeHeader(name: string): void {
    this.#headers.delete(name);
  }

  writeHead(status: number, headers: OutgoingHttpHeaders = {}): this {
    if (this.headersSent) return this;
    this.statusCode = status;
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) this.setHeader(name, value);
    for (const name of HOP_BY_HOP) this.#headers.delete(name);
    this.headersSent = true;
    if (NULL_BODY.has(status)) {
      this.#resolve(new Response(null, { status, headers: this.#headers }));
      return this;
    }
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        pull: () => this.#release(),
        // The client went away: the response ends as node:http's does when its socket closes.
        cancel: () => {
          this.destroy();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_BYTES }),
    );
    this.#resolve(new Response(body, { status, headers: this.#headers }));
    return this;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.headersSent) this.writeHead(this.statusCode);
    const controller = this.#controller;
    if (controller === undefined) return callback(); // a body-less status: nothing to carry
    controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((controller.desiredSize ?? 0) > 0) callback();
    else this.#waiting = callback;
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.headersSent) this.writeHead(this.statusCode);
    this.#controller?.close();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.headersSent) {
      // Ended before answering (the hub cut the request): nothing was promised, so a plain 500.
      this.headersSent = true;
      this.#resolve(new Response(null, { status: 500 }));
    } else if (this.#controller !== undefined && !this.writableFinished) {
      // Cut by the hub (a slow client) or gone (the client left): the body ends there, as the
      // socket would; the client resumes from its position. Only a real error fails the body.
      try {
        if (error === null) this.#controller.close();
        else this.#controller.error(error);
      } catch {
        // The stream was cancelled or closed already.
      }
    }
    callback(error);
  }

  #release(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }
}
