/**
 * The load clients, one per protocol, each as light as the protocol allows so that the machine's
 * cores go to the servers: a frame reader for WebSocket protocols (`frame-socket.ts`; Socket.IO's
 * Engine.IO v4 framing is spoken directly over it), `node:http` streams for SSE, and a keep-alive
 * agent for long-polling.
 * A client reports each bench publication's publish time to its sink, and nothing else.
 */
import { get, type Agent, type ClientRequest } from 'node:http';
import { FrameSocket } from './frame-socket.js';
import { BT_MARKER, readTimes, ST_MARKER, type Times } from './payload.js';
import { BENCH_CHANNEL, type ClientKind } from './targets.js';

export interface Sink {
  /** A bench publication arrived; `bt` is its publish time in us, `st` its scheduled time or -1. */
  message(index: number, bt: number, st: number): void;
  /** A client that was ready closed; `reason` says how (`closed with <code>`, or the error). */
  dropped(index: number, reason: string): void;
}

export interface LoadClient {
  close(): void;
}

interface Opening {
  readonly ready: () => void;
  readonly fail: (reason: string) => void;
  readonly isReady: () => boolean;
}

const READY_TIMEOUT_MS = 20_000;
const BT_OFFSET = BT_MARKER.length;
const ST_OFFSET = ST_MARKER.length;

export function openClient(
  kind: ClientKind,
  port: number,
  index: number,
  sink: Sink,
  agent: Agent,
): Promise<LoadClient> {
  return new Promise<LoadClient>((resolve, reject) => {
    let state: 'opening' | 'ready' | 'gone' = 'opening';
    let client: LoadClient | undefined;
    const timer = setTimeout(() => opening.fail('not ready in time'), READY_TIMEOUT_MS);
    const opening: Opening = {
      ready() {
        if (state !== 'opening') return;
        state = 'ready';
        clearTimeout(timer);
        resolve(client as LoadClient);
      },
      fail(reason) {
        if (state === 'gone') return;
        const wasReady = state === 'ready';
        state = 'gone';
        clearTimeout(timer);
        client?.close();
        if (wasReady) sink.dropped(index, reason);
        else reject(new Error(reason));
      },
      isReady: () => state === 'ready',
    };
    switch (kind) {
      case 'ws':
        client = wsClient(`ws://127.0.0.1:${port}/`, index, sink, opening, { onOpen: (_ws, o) => o.ready() });
        break;
      case 'herald-ws':
        client = wsClient(`ws://127.0.0.1:${port}/ws`, index, sink, opening, heraldWs);
        break;
      case 'socketio':
        client = wsClient(
          `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`,
          index,
          sink,
          opening,
          engineIo(false),
        );
        break;
      case 'herald-socketio':
        client = wsClient(
          `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`,
          index,
          sink,
          opening,
          engineIo(true),
        );
        break;
      case 'sse':
        client = sseClient(port, '/sse', index, sink, opening);
        break;
      case 'herald-sse':
        client = sseClient(port, `/sse?channel=${BENCH_CHANNEL}`, index, sink, opening);
        break;
      case 'herald-poll':
        client = new Poller(port, index, sink, opening, agent);
        break;
    }
  });
}

// ---- WebSocket protocols ------------------------------------------------------------------

interface WsProtocol {
  onOpen?(ws: FrameSocket, opening: Opening): void;
  /** A message that is not a bench publication. */
  onControl?(ws: FrameSocket, data: Buffer, opening: Opening): void;
}

function wsClient(url: string, index: number, sink: Sink, opening: Opening, protocol: WsProtocol): LoadClient {
  const times: Times = { bt: -1, st: -1 };
  const ws = new FrameSocket(url, {
    open: (socket) => protocol.onOpen?.(socket, opening),
    message(data, start, end) {
      if (readTimes(data, start, end, times)) sink.message(index, times.bt, times.st);
      else protocol.onControl?.(ws, data.subarray(start, end), opening);
    },
    gone: (reason) => opening.fail(reason),
  });
  return { close: () => ws.terminate() };
}

const heraldWs: WsProtocol = {
  onOpen(ws) {
    // Pipelined, as PROTOCOL.md allows: the hub runs a connection's commands in order, connect
    // first. Two frames in one TCP write, as from any client that buffers what it queues in one go.
    ws.send(
      '{"id":1,"method":"connect","params":{}}',
      `{"id":2,"method":"subscribe","params":{"channel":"${BENCH_CHANNEL}"}}`,
    );
  },
  onControl(_ws, data, opening) {
    if (opening.isReady()) return;
    const text = data.toString();
    if (text.includes('"error"')) opening.fail(text);
    else if (text.startsWith('{"id":2,')) opening.ready();
  },
};

/** Engine.IO v4 over WebSocket, Socket.IO v5 packets: `0` open, `40` connect, `2`/`3` ping/pong, `42` event. */
function engineIo(subscribe: boolean): WsProtocol {
  return {
    onControl(ws, data, opening) {
      const type = data[0];
      if (type === 0x32 /* 2: ping */) ws.send('3');
      else if (type === 0x30 /* 0: open */) ws.send('40');
      else if (type === 0x34 /* 4: message */) {
        const packet = data[1];
        if (packet === 0x30 /* 40: connected */) {
          if (subscribe) ws.send(`421["subscribe",{"channel":"${BENCH_CHANNEL}"}]`);
          else opening.ready();
        } else if (packet === 0x33 /* 43: ack */) {
          const text = data.toString();
          if (text.includes('"error"')) opening.fail(text);
          else opening.ready();
        } else if (packet === 0x34 /* 44: connect error */) opening.fail(data.toString());
      }
    },
  };
}

// ---- Server-Sent Events -------------------------------------------------------------------

function sseClient(port: number, path: string, index: number, sink: Sink, opening: Opening): LoadClient {
  const req = get({ host: '127.0.0.1', port, path, agent: false, headers: { Accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      opening.fail(`status ${res.statusCode ?? '?'}`);
      return;
    }
    res.setEncoding('latin1');
    let carry = '';
    res.on('data', (chunk: string) => {
      if (!opening.isReady()) opening.ready();
      const text = carry.length === 0 ? chunk : carry + chunk;
      let start = 0;
      let bt = text.indexOf(BT_MARKER);
      for (;;) {
        const end = text.indexOf('\n\n', start);
        if (end < 0) break;
        if (bt >= 0 && bt < end) {
          const st = text.indexOf(ST_MARKER, bt);
          sink.message(
            index,
            parseFloat(text.slice(bt + BT_OFFSET, bt + BT_OFFSET + 24)),
            st >= 0 && st < end ? parseFloat(text.slice(st + ST_OFFSET, st + ST_OFFSET + 24)) : -1,
          );
          bt = text.indexOf(BT_MARKER, end);
        }
        start = end + 2;
      }
      carry = start === text.length ? '' : text.slice(start);
    });
    res.on('close', () => opening.fail('stream ended'));
  });
  req.on('error', (error) => opening.fail(error.message));
  return { close: () => req.destroy() };
}

// ---- long-polling ---------------------------------------------------------------------------

const MAX_POLL_RETRIES = 20;

interface PollAnswer {
  cursor: string;
  publications: { data?: { bt?: number; st?: number } }[];
}

class Poller implements LoadClient {
  readonly #port: number;
  readonly #index: number;
  readonly #sink: Sink;
  readonly #opening: Opening;
  readonly #agent: Agent;
  #cursor: string | undefined;
  #req: ClientRequest | undefined;
  #stopped = false;
  #retries = 0;

  constructor(port: number, index: number, sink: Sink, opening: Opening, agent: Agent) {
    this.#port = port;
    this.#index = index;
    this.#sink = sink;
    this.#opening = opening;
    this.#agent = agent;
    // The first poll answers at once with a cursor: from then on nothing can be missed.
    this.#poll(0);
  }

  close(): void {
    this.#stopped = true;
    this.#req?.destroy();
  }

  #poll(timeout: number): void {
    if (this.#stopped) return;
    const cursor = this.#cursor === undefined ? '' : `&cursor=${encodeURIComponent(this.#cursor)}`;
    const path = `/poll?channel=${BENCH_CHANNEL}&timeout=${timeout}${cursor}`;
    const req = get({ host: '127.0.0.1', port: this.#port, path, agent: this.#agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) return this.#retry(`status ${res.statusCode ?? '?'}: ${body}`);
        let answer: PollAnswer;
        try {
          answer = JSON.parse(body) as PollAnswer;
        } catch {
          return this.#retry('unparseable answer');
        }
        this.#retries = 0;
        this.#cursor = answer.cursor;
        for (const pub of answer.publications) {
          const bt = pub.data?.bt;
          if (typeof bt === 'number') this.#sink.message(this.#index, bt, pub.data?.st ?? -1);
        }
        if (!this.#opening.isReady()) this.#opening.ready();
        this.#poll(55);
      });
    });
    req.on('error', (error) => this.#retry(error.message));
    this.#req = req;
  }

  #retry(reason: string): void {
    if (this.#stopped) return;
    if (++this.#retries > MAX_POLL_RETRIES) {
      this.#opening.fail(reason);
      return;
    }
    setTimeout(() => this.#poll(this.#opening.isReady() ? 55 : 0), 50 * this.#retries);
  }
}
