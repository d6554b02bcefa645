/**
 * The IoT example in one command: a hub with an MQTT bridge (sensor topics onto `sensors:<id>`
 * channels), the dashboard page at /, and the fake sensors publishing to Mosquitto.
 *   node --conditions=herald-source --import tsx examples/iot/run.ts
 * then open http://127.0.0.1:8080/ . Needs Mosquitto on 127.0.0.1:1883.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { HeraldServer } from '@herald/server';
import { startIntegrations, type Integrations } from '@herald/integrations';
import { runSensors } from './sensors.ts';

export interface IotDemo {
  readonly url: string;
  readonly server: HeraldServer;
  readonly integrations: Integrations;
  close(): Promise<void>;
}

export async function startIotDemo(o: { port?: number; mqttUrl?: string; prefix?: string } = {}): Promise<IotDemo> {
  const page = await readFile(new URL('./dashboard.html', import.meta.url));
  const server = new HeraldServer({
    apiKey: randomBytes(24).toString('base64url'),
    jwtSecret: randomBytes(32).toString('base64url'),
    // Readings are public in this demo: the dashboard needs no token.
    anonymousChannels: ['sensors:*'],
    routes: (req, res, url) => {
      if (req.method !== 'GET' || url.pathname !== '/') return false;
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': page.length });
      res.end(page);
      return true;
    },
  });
  const address = await server.listen(o.port ?? 8080, '127.0.0.1');
  const prefix = o.prefix ?? 'herald-iot';
  const integrations = await startIntegrations(server, {
    bridges: [
      {
        type: 'mqtt',
        name: 'iot',
        url: o.mqttUrl ?? 'mqtt://127.0.0.1:1883',
        clientId: `herald-${prefix.replace(/[^A-Za-z0-9_-]/g, '-')}`,
        routes: [{ topic: `${prefix}/sensors/+/reading`, channel: 'sensors:{1}', event: 'reading', decode: 'json' }],
      },
    ],
  });
  return {
    url: `http://127.0.0.1:${address.port}`,
    server,
    integrations,
    async close() {
      await integrations.close();
      await server.close();
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const demo = await startIotDemo();
  process.stdout.write(`IoT dashboard: ${demo.url}/   (Ctrl-C to stop)\n`);
  const stop = new AbortController();
  process.on('SIGINT', () => stop.abort());
  await runSensors({ signal: stop.signal, count: 3600 });
  await demo.close();
}
