/**
 * PROTOCOL.md section 1, SIGTERM: the hub stops accepting, answers `/readyz` 503, tells every
 * client to reconnect elsewhere (WebSocket `disconnect` push then close 1001, SSE
 * `herald.disconnect` with `reconnect: true`) and exits.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, describe, it } from 'node:test';
import { Herald, Sse, Ws, killAll, mint, query, uniqueChannel, within } from './support.ts';

/** GET over a keep-alive agent, so a request can still reach a hub that stopped accepting. */
function keepAliveGet(agent: Agent, port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

describe('section 1: SIGTERM', () => {
  after(killAll);

  it('tells WebSocket and SSE clients to reconnect, answers /readyz 503 and exits', async (t) => {
    const hub = await Herald.start();
    const channel = uniqueChannel('drain');
    const token = await mint({ channels: ['*'] });
    const ws = await Ws.connect(hub.wsUrl, token);
    await ws.ok('subscribe', { channel });
    const sse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`);
    await sse.waitFor(() => sse.named('herald.connected').length === 1, 'herald.connected');

    // Readiness is polled over connections opened before the signal (a load balancer's probe).
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    assert.equal(await keepAliveGet(agent, hub.port, '/readyz'), 200);
    // Requests that left after the hub told its clients it drains (so after SIGTERM took effect).
    const statuses: number[] = [];
    let draining = false;
    let polling = true;
    const poller = (async () => {
      while (polling && hub.alive) {
        const sent = draining;
        const status = await keepAliveGet(agent, hub.port, '/readyz');
        if (sent) statuses.push(status);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const signalled = Date.now();
    hub.process.kill('SIGTERM');
    await ws.waitFor(() => ws.pushes('disconnect').length > 0, 'the disconnect push', 20_000);
    draining = true;
    // Stops accepting: a new WebSocket or stream is not served any more.
    const late = await Ws.open(hub.wsUrl).then(
      (socket) => {
        socket.end();
        return 'upgraded';
      },
      (error: any) => `refused ${error.status ?? error.code ?? error.message}`,
    );
    assert.notEqual(late, 'upgraded', 'no new WebSocket once draining');
    const lateSse = await Sse.open(`${hub.url}/sse?${query([channel], { token })}`).then(
      (stream) => {
        stream.close();
        return stream.status;
      },
      () => 0,
    );
    assert.notEqual(lateSse, 200, 'no new SSE stream once draining');
    const close = await ws.closedWithin(20_000);
    assert.equal(close.code, 1001, 'WebSocket close 1001');
    const disconnect = ws.pushes('disconnect');
    assert.equal(disconnect.length, 1, 'one disconnect push before the close');
    assert.equal(disconnect[0].code, 1001);
    assert.equal(disconnect[0].reconnect, true);
    assert.equal(typeof disconnect[0].reason, 'string');

    await sse.waitFor(() => sse.named('herald.disconnect').length === 1, 'SSE herald.disconnect', 20_000);
    assert.equal(sse.named('herald.disconnect')[0].reconnect, true, 'SSE herald.disconnect reconnect: true');
    await within(sse.done, 20_000, undefined);
    assert.ok(sse.ended, 'the hub ends the SSE response after herald.disconnect');

    const code = await within(hub.exited, 30_000, 'still running');
    polling = false;
    await poller;
    agent.destroy();
    t.diagnostic(
      JSON.stringify({ exitCode: code, exitMs: Date.now() - signalled, readyzAfterSigterm: [...new Set(statuses)] }),
    );
    assert.notEqual(code, 'still running', 'the process exits');
    assert.ok(!statuses.includes(200), `/readyz never 200 after SIGTERM: ${JSON.stringify(statuses)}`);
    assert.ok(statuses.includes(503), `/readyz answered 503 while draining: ${JSON.stringify([...new Set(statuses)])}`);
  });
});
