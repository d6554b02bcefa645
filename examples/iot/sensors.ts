/**
 * A fake fleet of sensors publishing readings to MQTT (QoS 1), for the IoT example.
 *   node --import tsx examples/iot/sensors.ts [--url mqtt://127.0.0.1:1883] [--prefix herald-iot]
 *        [--sensors s1,s2,s3] [--interval 1000] [--count 600]
 * Topic: <prefix>/sensors/<id>/reading; payload JSON {sensor, seq, temperature, humidity, ts}
 * (seq and ts make every reading unique, which the bridge's default identity relies on).
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import mqtt from 'mqtt';

export interface SensorOptions {
  readonly url?: string;
  readonly prefix?: string;
  readonly sensors?: readonly string[];
  readonly intervalMs?: number;
  /** Readings per sensor; then it stops. */
  readonly count?: number;
  readonly signal?: AbortSignal;
}

export async function runSensors(o: SensorOptions = {}): Promise<number> {
  const client = await mqtt.connectAsync(o.url ?? 'mqtt://127.0.0.1:1883');
  const sensors = o.sensors ?? ['s1', 's2', 's3'];
  const count = o.count ?? 600;
  let sent = 0;
  try {
    for (let seq = 1; seq <= count && o.signal?.aborted !== true; seq++) {
      for (const [i, sensor] of sensors.entries()) {
        const t = seq / 10 + i;
        const reading = {
          sensor,
          seq,
          temperature: Math.round((20 + 3 * Math.sin(t) + Math.random() * 0.2) * 100) / 100,
          humidity: Math.round((45 + 10 * Math.cos(t / 2)) * 10) / 10,
          ts: Date.now(),
        };
        await client.publishAsync(`${o.prefix ?? 'herald-iot'}/sensors/${sensor}/reading`, JSON.stringify(reading), {
          qos: 1,
        });
        sent++;
      }
      if (seq < count) await new Promise((r) => setTimeout(r, o.intervalMs ?? 1000));
    }
  } finally {
    await client.endAsync();
  }
  return sent;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      prefix: { type: 'string' },
      sensors: { type: 'string' },
      interval: { type: 'string' },
      count: { type: 'string' },
    },
  });
  const stop = new AbortController();
  process.on('SIGINT', () => stop.abort());
  const sent = await runSensors({
    ...(values.url === undefined ? {} : { url: values.url }),
    ...(values.prefix === undefined ? {} : { prefix: values.prefix }),
    ...(values.sensors === undefined ? {} : { sensors: values.sensors.split(',') }),
    ...(values.interval === undefined ? {} : { intervalMs: Number(values.interval) }),
    ...(values.count === undefined ? {} : { count: Number(values.count) }),
    signal: stop.signal,
  });
  process.stdout.write(`sent ${sent} readings\n`);
}
