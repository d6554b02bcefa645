/** The IoT example runs: sensors publish to Mosquitto, the dashboard's EventSource gets the readings. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { EventSource } from 'eventsource';
import { until } from '../../test/support/hub.ts';
import { requireService } from '../../test/support/services.ts';
import { startIotDemo } from './run.ts';
import { runSensors } from './sensors.ts';

describe('IoT example', () => {
  it('serves the dashboard, and readings published to MQTT arrive over SSE', async (t) => {
    if (!(await requireService(t, 'mosquitto'))) return;
    const prefix = `herald-iot-test-${randomUUID().slice(0, 8)}`;
    const demo = await startIotDemo({ port: 0, prefix });
    const events: Array<{ channel: string; data: { seq: number; temperature: number } }> = [];
    const source = new EventSource(`${demo.url}/sse?channel=sensors:s1&channel=sensors:s2`);
    source.addEventListener('reading', (e) => events.push(JSON.parse(e.data)));
    let connected = false;
    source.addEventListener('herald.connected', () => (connected = true));
    try {
      const page = await fetch(`${demo.url}/`);
      assert.equal(page.url, `${demo.url}/examples/iot/`, 'the root leads to the dashboard');
      assert.match(await page.text(), /<script type="module" src="app.js">/);
      const script = await fetch(`${demo.url}/examples/iot/app.js`).then((r) => r.text());
      assert.match(script, /new EventSource\(`\/sse\?\$\{query\}`\)/);
      await until(() => connected, 'herald.connected');
      assert.equal(await runSensors({ prefix, sensors: ['s1', 's2'], count: 3, intervalMs: 10 }), 6);
      await until(() => events.length === 6, 'six readings');
      assert.deepEqual(
        events.filter((p) => p.channel === 'sensors:s1').map((p) => p.data.seq),
        [1, 2, 3],
      );
      assert.equal(typeof events[0]?.data.temperature, 'number');
    } finally {
      source.close();
      await demo.close();
    }
  });
});
