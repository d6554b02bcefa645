/**
 * Metrics of the integrations, registered in the hub's registry (`HeraldServer.metrics`) so that
 * `GET /metrics` shows them beside the hub's own. Without a registry (a component used alone)
 * the metrics still count but are not exported. Integrations started again on the same server
 * (a restart, tests) continue the same counters; gauges, which read a live object, are replaced.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function counter<L extends string>(
  registry: Registry | undefined,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Counter<L> {
  const existing = registry?.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: registry === undefined ? [] : [registry] });
}

export function gauge(
  registry: Registry | undefined,
  name: string,
  help: string,
  read: () => number | Promise<number>,
): Gauge {
  registry?.removeSingleMetric(name);
  return new Gauge({
    name,
    help,
    registers: registry === undefined ? [] : [registry],
    async collect() {
      this.set(await read());
    },
  });
}

export function histogram(
  registry: Registry | undefined,
  name: string,
  help: string,
  buckets: number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
): Histogram {
  const existing = registry?.getSingleMetric(name);
  if (existing instanceof Histogram) return existing;
  return new Histogram({ name, help, buckets, registers: registry === undefined ? [] : [registry] });
}
