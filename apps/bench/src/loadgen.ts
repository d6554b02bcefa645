/**
 * A load-generator process: opens its share of the clients, then counts and times the bench
 * publications they receive, phase by phase, as the orchestrator arms and awaits them.
 */
import { Agent } from 'node:http';
import { nowUs } from './clock.js';
import { openClient, type LoadClient, type Sink } from './clients.js';
import { Histogram } from './histogram.js';
import { fdLimit, serveRpc } from './rpc.js';
import type { ClientKind } from './targets.js';

const clients: (LoadClient | undefined)[] = [];
const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
let connected = 0;
let dropped = 0;
/** How the dropped clients went, by reason. */
const dropReasons = new Map<string, number>();

/** The current phase: each client should receive `perClient` publications. */
const phase = {
  perClient: 0,
  latency: false,
  counts: new Uint32Array(0),
  doneClients: 0,
  received: 0,
  lastUs: 0,
  histogram: new Histogram(),
  /** Receive minus the scheduled time, for publications that carry one. */
  fromSchedule: new Histogram(),
  settled: undefined as (() => void) | undefined,
};

function checkSettled(): void {
  if (phase.settled !== undefined && phase.doneClients >= connected - dropped) {
    const settled = phase.settled;
    phase.settled = undefined;
    settled();
  }
}

const sink: Sink = {
  message(index, bt, st) {
    phase.received++;
    if (phase.latency) {
      const now = nowUs();
      phase.histogram.record(now - bt);
      if (st >= 0) phase.fromSchedule.record(now - st);
    }
    const count = (phase.counts[index] ?? 0) + 1;
    phase.counts[index] = count;
    if (count === phase.perClient) {
      phase.doneClients++;
      phase.lastUs = nowUs();
      checkSettled();
    }
  },
  dropped(_index, reason) {
    dropped++;
    dropReasons.set(reason, (dropReasons.get(reason) ?? 0) + 1);
    checkSettled();
  },
};

async function connect(kind: ClientKind, port: number, count: number, concurrency: number): Promise<object> {
  const start = nowUs();
  const errors = new Map<string, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      try {
        clients[index] = await openClient(kind, port, index, sink, agent);
        connected++;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        errors.set(reason, (errors.get(reason) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  phase.counts = new Uint32Array(count);
  return { connected, failed: count - connected, errors: Object.fromEntries(errors), ms: (nowUs() - start) / 1000 };
}

serveRpc(async (request) => {
  switch (request.cmd) {
    case 'hello':
      return { fdLimit: fdLimit(), pid: process.pid };
    case 'connect':
      return connect(
        request.kind as ClientKind,
        request.port as number,
        request.count as number,
        request.concurrency as number,
      );
    case 'arm':
      phase.perClient = request.perClient as number;
      phase.latency = request.latency === true;
      phase.counts.fill(0);
      phase.doneClients = 0;
      phase.received = 0;
      phase.lastUs = 0;
      phase.histogram.reset();
      phase.fromSchedule.reset();
      return {};
    case 'expect':
      // The count each client should reach, known only now (autocannon: the publications it got
      // acknowledged); clients that already reached it are done.
      phase.perClient = request.perClient as number;
      phase.doneClients = phase.counts.reduce((done, count) => done + (count >= phase.perClient ? 1 : 0), 0);
      return {};
    case 'await': {
      const timeoutMs = request.timeoutMs as number;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          phase.settled = undefined;
          resolve();
        }, timeoutMs);
        phase.settled = () => {
          clearTimeout(timer);
          resolve();
        };
        checkSettled();
      });
      return {
        complete: phase.doneClients >= connected - dropped,
        doneClients: phase.doneClients,
        clients: connected - dropped,
        dropped,
        dropReasons: Object.fromEntries(dropReasons),
        received: phase.received,
        lastUs: phase.lastUs,
        histogram: phase.latency ? phase.histogram.toData() : undefined,
        fromSchedule: phase.latency && phase.fromSchedule.count > 0 ? phase.fromSchedule.toData() : undefined,
      };
    }
    case 'close':
      for (const client of clients) client?.close();
      clients.length = 0;
      agent.destroy();
      return {};
    default:
      throw new Error(`unknown command ${request.cmd}`);
  }
});
