/**
 * A hub in its own process, so that an attack that kills or bloats it shows up as an exit code
 * or an RSS figure instead of taking the test runner down with it. Started by child-hub.ts with
 * its options as JSON in HERALD_TEST_HUB; reports its port over IPC, answers memory and history
 * questions over IPC, and on SIGTERM drains like `herald serve` does, then reports what the
 * broker holds (the witness for "nothing acknowledged is lost") before it exits.
 */
import { HeraldServer, type HeraldOptions } from '@herald/server';
import { pino } from 'pino';
import { createBackend } from '../../../apps/herald/src/backend.ts';

interface ChildConfig {
  readonly port?: number;
  readonly options?: Partial<HeraldOptions>;
  /** memory (default), redis://... or nats://... */
  readonly broker?: string;
  readonly drain?: { batchSize?: number; pauseMs?: number };
  /** Channels whose history is reported after a drain. */
  readonly witnessChannels?: readonly string[];
  readonly logLevel?: string;
  /** Attach Socket.IO (only when @herald/transport-socketio exports attachSocketIo). */
  readonly socketio?: boolean;
}

export type ChildRequest = { id: number; type: 'memory'; gc?: boolean } | { id: number; type: 'stats' };

const config = JSON.parse(process.env.HERALD_TEST_HUB ?? '{}') as ChildConfig;
const logger = pino({ level: config.logLevel ?? 'silent' }, pino.destination(2));
const historySize = config.options?.historySize ?? 1000;
const historyTtlSeconds = config.options?.historyTtlSeconds ?? 600;
const backend = await createBackend(
  config.broker ?? 'memory',
  { size: historySize, ttlSeconds: historyTtlSeconds },
  logger,
);
const server = new HeraldServer({
  apiKey: 'test-api-key-0123456789abcdef',
  jwtSecret: 'test-jwt-secret-0123456789abcdef0123456789',
  ...config.options,
  broker: backend.broker,
  presence: backend.presence,
  logger,
});
let socketio = false;
if (config.socketio === true) {
  const sio = (await import('@herald/transport-socketio')) as { attachSocketIo?: (s: HeraldServer) => unknown };
  if (typeof sio.attachSocketIo === 'function') {
    sio.attachSocketIo(server);
    socketio = true;
  }
}
const address = await server.listen(config.port ?? 0, '127.0.0.1');
process.send?.({ type: 'ready', port: address.port, socketio });

process.on('message', (message: ChildRequest) => {
  if (message.type === 'memory') {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (message.gc === true && gc !== undefined) gc();
    process.send?.({ id: message.id, memory: process.memoryUsage() });
  } else if (message.type === 'stats') {
    const s = server.hub.stats;
    process.send?.({
      id: message.id,
      stats: {
        connections: s.connections,
        deliveries: s.deliveries,
        publications: s.publications,
        slowConsumerDisconnects: s.slowConsumerDisconnects,
        rateLimited: s.rateLimited,
        authFailures: s.authFailures,
        sessions: server.hub.sessionCount,
        channels: server.hub.localChannelCount,
      },
    });
  }
});

let draining = false;
process.on('SIGTERM', () => {
  if (draining) return;
  draining = true;
  const started = Date.now();
  const report = async (): Promise<void> => {
    await server.drain(config.drain ?? {});
    const drainMs = Date.now() - started;
    // The broker object outlives close(): read what it stored, as a restarted node would.
    const witness: Record<string, number[]> = {};
    for (const channel of config.witnessChannels ?? []) {
      const h = await server.hub.history(channel, { limit: historySize });
      witness[channel] = h.publications.map((p) => p.offset);
    }
    await new Promise<void>((resolve) => process.send?.({ type: 'drained', drainMs, witness }, () => resolve()));
  };
  // Never hang, as `herald serve` never hangs: a drain that cannot finish still ends the process.
  setTimeout(() => process.exit(1), 30_000).unref();
  report().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`drain failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
});
