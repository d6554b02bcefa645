/**
 * What every bench server process answers over IPC, whatever it serves: memory after GC, its
 * CPU time, connection count, and the two publishing patterns (a burst in one synchronous loop,
 * and a fixed rate). Publishing happens inside the server process for every server, reference or
 * Herald, so each pays the same trigger cost and the publish time is taken at the same point.
 */
import { cpuUs, nowUs } from './clock.js';
import { benchPayload, type BenchPayload } from './payload.js';
import { fdLimit, memoryAfterGc, serveRpc, writeSyscalls } from './rpc.js';

export interface BenchServer {
  readonly port: number;
  /** Where a separate publisher POSTs `{"channel", "data"}`; default `/publish`. */
  readonly publishPath?: string;
  /** Bearer key for that route, if it needs one. */
  readonly apiKey?: string;
  /** Open client connections as the server counts them. */
  connections(): number | Promise<number>;
  /**
   * For a server that runs as other processes (`herald serve --workers N`): readings of those,
   * instead of this process's own.
   */
  readonly measured?: Readings;
  /** Sends one publication to every client. */
  broadcast(payload: BenchPayload): void;
}

/** What the bench reads off a server's processes. */
export interface Readings {
  /** The processes it runs in. */
  pids(): number[];
  /** CPU time, µs. */
  cpuUs(): number;
  writeSyscalls(): number;
  memory(): Promise<{ rss: number; heapUsed: number }>;
}

/** This process's own readings: every server the bench runs in its own process. */
const OWN: Readings = { pids: () => [process.pid], cpuUs, writeSyscalls, memory: memoryAfterGc };

export function serveControl(server: BenchServer): void {
  const readings = server.measured ?? OWN;
  serveRpc(async (request) => {
    switch (request.cmd) {
      case 'hello':
        return {
          port: server.port,
          fdLimit: fdLimit(),
          pid: process.pid,
          publishPath: server.publishPath ?? '/publish',
          apiKey: server.apiKey,
          pids: readings.pids(),
        };
      case 'mem':
        return {
          memory: await readings.memory(),
          connections: await server.connections(),
        };
      case 'cpu':
        return { cpuUs: readings.cpuUs(), atUs: nowUs(), syscw: readings.writeSyscalls() };
      case 'conns':
        return { connections: await server.connections() };
      case 'burst': {
        const count = request.count as number;
        const bytes = request.bytes as number;
        const syscw = writeSyscalls();
        const cpu0 = cpuUs();
        const t0 = nowUs();
        for (let seq = 0; seq < count; seq++) server.broadcast(benchPayload(nowUs(), seq, bytes));
        return { t0Us: t0, cpu0Us: cpu0, syscw, loopUs: nowUs() - t0 };
      }
      case 'rate': {
        const count = request.count as number;
        const bytes = request.bytes as number;
        const intervalMs = 1000 / (request.rate as number);
        const start = performance.now();
        for (let seq = 0; seq < count; seq++) {
          // Scheduled against the start, so timer drift does not accumulate.
          const wait = start + seq * intervalMs - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          server.broadcast(benchPayload(nowUs(), seq, bytes));
        }
        return { sent: count };
      }
      default:
        throw new Error(`unknown command ${request.cmd}`);
    }
  });
}
