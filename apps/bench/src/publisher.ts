/**
 * The publisher of the user-path scenarios: a process of its own that publishes over HTTP, as a
 * backend does (Herald: `POST /api/publish` with the API key; the reference servers: their
 * `POST /publish`). Two shapes, each bounded in count and in time:
 *
 *   burst: `count` publications with `inFlight` requests in flight; every publication is due at
 *          the start (its `st`), and carries the time its request was sent (`bt`);
 *   paced: `count` publications at `rate` per second on a fixed schedule, open loop (a
 *          publication is sent when due, whether or not the previous one was answered, as
 *          independent publishers would), at most `maxInFlight` unanswered; `st` is when it was
 *          due, `bt` when it was sent.
 */
import { Agent } from 'node:http';
import { nowUs } from './clock.js';
import { post } from './http-load.js';
import { benchPayload } from './payload.js';
import { fdLimit, serveRpc } from './rpc.js';
import { BENCH_CHANNEL } from './targets.js';

interface Target {
  readonly port: number;
  readonly path: string;
  readonly apiKey: string | undefined;
  readonly bytes: number;
}

interface Outcome {
  sent: number;
  failed: number;
  firstError: string | undefined;
  /** Milliseconds from request to answer, one per answered publication. */
  readonly acks: number[];
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function publishOne(target: Target, agent: Agent, seq: number, st: number, outcome: Outcome): Promise<void> {
  const bt = nowUs();
  const body = JSON.stringify({ channel: BENCH_CHANNEL, data: benchPayload(bt, seq, target.bytes, st) });
  outcome.sent++;
  try {
    const { status, text } = await post(target.port, target.apiKey, target.path, body, agent);
    if (status !== 200) {
      outcome.failed++;
      outcome.firstError ??= `${status} ${text.slice(0, 200)}`;
      return;
    }
    outcome.acks.push((nowUs() - bt) / 1000);
  } catch (error) {
    outcome.failed++;
    outcome.firstError ??= error instanceof Error ? error.message : String(error);
  }
}

function summary(outcome: Outcome, extra: object): object {
  const sorted = [...outcome.acks].sort((a, b) => a - b);
  return {
    sent: outcome.sent,
    failed: outcome.failed,
    firstError: outcome.firstError,
    ackP50: percentile(sorted, 0.5),
    ackP99: percentile(sorted, 0.99),
    ...extra,
  };
}

async function burst(target: Target, count: number, inFlight: number, timeoutMs: number): Promise<object> {
  const agent = new Agent({ keepAlive: true, maxSockets: inFlight });
  const outcome: Outcome = { sent: 0, failed: 0, firstError: undefined, acks: [] };
  const t0 = nowUs();
  const deadline = performance.now() + timeoutMs;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (next < count && performance.now() < deadline) await publishOne(target, agent, next++, t0, outcome);
    }),
  );
  agent.destroy();
  return summary(outcome, { t0Us: t0, seconds: (nowUs() - t0) / 1e6 });
}

async function paced(target: Target, rate: number, count: number, maxInFlight: number): Promise<object> {
  const agent = new Agent({ keepAlive: true, maxSockets: maxInFlight });
  const outcome: Outcome = { sent: 0, failed: 0, firstError: undefined, acks: [] };
  const intervalUs = 1e6 / rate;
  const t0 = nowUs() + 20_000;
  const pending = new Set<Promise<void>>();
  let skipped = 0;
  for (let seq = 0; seq < count; seq++) {
    const due = t0 + seq * intervalUs;
    const wait = (due - nowUs()) / 1000;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (pending.size >= maxInFlight) {
      // The hub does not keep up even with this many requests waiting: this publication is not
      // sent (and counted), so the run stays bounded in time.
      skipped++;
      continue;
    }
    const p = publishOne(target, agent, seq, Math.round(due), outcome).finally(() => pending.delete(p));
    pending.add(p);
  }
  await Promise.all(pending);
  agent.destroy();
  return summary(outcome, { skipped, t0Us: t0 });
}

serveRpc(async (request) => {
  const target: Target = {
    port: request.port as number,
    path: request.path as string,
    apiKey: request.apiKey as string | undefined,
    bytes: request.bytes as number,
  };
  switch (request.cmd) {
    case 'hello':
      return { fdLimit: fdLimit(), pid: process.pid };
    case 'burst':
      return burst(target, request.count as number, request.inFlight as number, request.timeoutMs as number);
    case 'paced':
      return paced(target, request.rate as number, request.count as number, request.maxInFlight as number);
    default:
      throw new Error(`unknown command ${request.cmd}`);
  }
});
