/**
 * Prometheus metrics (PROTOCOL.md section 1), read from the hub's plain counters at scrape time.
 * Each hub has its own registry, so several hubs in one process (tests) never share counts.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Hub } from './core/hub.js';

export function createMetrics(hub: Hub): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'herald_' });
  const stats = hub.stats;

  new Gauge({
    name: 'herald_connections',
    help: 'Open client connections by transport.',
    labelNames: ['transport'],
    registers: [registry],
    collect() {
      for (const [t, n] of Object.entries(stats.connections)) this.set({ transport: t }, n);
    },
  });
  new Gauge({
    name: 'herald_channels',
    help: 'Channels with subscribers on this node.',
    registers: [registry],
    collect() {
      this.set(hub.localChannelCount);
    },
  });
  new Gauge({
    name: 'herald_broker_up',
    help: '1 while the broker is connected.',
    registers: [registry],
    // Summed over the workers of one machine it would read 2; any worker without it is a problem.
    aggregator: 'min',
    collect() {
      this.set(hub.broker.ready ? 1 : 0);
    },
  });
  monotonic(registry, 'herald_publications_total', 'Publications accepted by this node.', () => stats.publications);
  monotonic(
    registry,
    'herald_slow_consumer_disconnects_total',
    'Clients disconnected with 4004.',
    () => stats.slowConsumerDisconnects,
  );
  monotonic(registry, 'herald_auth_failures_total', 'Refused tokens.', () => stats.authFailures);
  monotonic(
    registry,
    'herald_ephemeral_dropped_total',
    'Ephemeral publications dropped for slow clients.',
    () => stats.ephemeralDropped,
  );
  monotonic(
    registry,
    'herald_rate_limited_total',
    'Connections ended for sending too many commands.',
    () => stats.rateLimited,
  );
  new Counter({
    name: 'herald_deliveries_total',
    help: 'Publications written to clients, by transport.',
    labelNames: ['transport'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [t, n] of Object.entries(stats.deliveries)) this.inc({ transport: t }, n);
    },
  });
  return registry;
}

/** A counter mirrored from a monotonic number the hub keeps. */
function monotonic(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
