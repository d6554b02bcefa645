/**
 * The IoT example in one command: a hub with an MQTT bridge (sensor topics onto `sensors:<id>`
 * channels), the dashboard page at /examples/iot/ (served like every sample app), and the fake
 * sensors publishing to Mosquitto.
 *   node --conditions=herald-source --import tsx examples/iot/run.ts
 * then open http://127.0.0.1:8080/examples/iot/ . Needs Mosquitto on 127.0.0.1:1883.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { HeraldServer } from '@herald/server';
import { startIntegrations, type Integrations } from '@herald/integrations';
import { pages } from '../../apps/herald/src/pages.ts';
import { runSensors } from './sensors.ts';

export interface IotDemo {
  readonly url: string;
  readonly server: HeraldServer;
  readonly integrations: Integrations;
  close(): Promise<void>;
}

export async function startIotDemo(o: { port?: number; mqttUrl?: string; prefix?: string } = {}): Promise<IotDemo> {
  const apiKey = randomBytes(24).toString('base64url');
  const jwtSecret = randomBytes(32).toString('base64url');
  // The sample pages as `herald serve` serves them; no admin page and no demo tokens here.
  const site = pages({ apiKey, jwtSecret, admin: false, demo: false });
  const server = new HeraldServer({
    apiKey,
    jwtSecret,
    // Readings are public in this demo: the dashboard needs no token.
    anonymousChannels: ['sensors:*'],
    routes: (req, res, url) => {
      if (url.pathname !== '/') return site.routes(req, res, url);
      res.writeHead(302, { Location: '/examples/iot/' });
      res.end();
      return Promise.resolve(true);
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
  const demo = await startIotDemo({ port: Number(process.env.PORT ?? 8080) });
  process.stdout.write(`IoT dashboard: ${demo.url}/examples/iot/   (Ctrl-C to stop)\n`);
  const stop = new AbortController();
  process.on('SIGINT', () => stop.abort());
  await runSensors({ signal: stop.signal, count: 3600 });
  await demo.close();
}
