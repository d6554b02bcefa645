/**
 * Clients of an Engine.IO protocol other than 4 (socket.io-client 2.x speaks EIO=3) are refused
 * before any upgrade or handshake with an HTTP 400 (the hub's error body, `bad_request`) whose
 * sentence names the supported clients (issue 14, item 4). Before, the real 2.x client saw only `xhr poll error` or `websocket
 * error` and retried forever, and over WebSocket the hub answered 101 and then wrote an HTTP 400
 * into the upgraded stream.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import ioV2 from 'socket.io-client-v2';
import { token, until } from '../../../test/support/hub.ts';
import { HandshakeRefused, RawWs } from '../../../test/reliability/support/raw-ws.ts';
import { SioClient, startSioHub, type SioHub } from './support.ts';

const SUPPORTED = /socket\.io-client 3\.x and 4\.x/;

let hub: SioHub;
before(async () => {
  hub = await startSioHub();
});
after(() => hub.close());

/** Upgrades seen by the hub's HTTP server that it answered with 101. */
function countSwitches(): { readonly count: number; stop(): void } {
  const counter = { count: 0, stop: () => undefined as void };
  const onUpgrade = (_req: unknown, socket: { write: (...a: unknown[]) => boolean }): void => {
    const write = socket.write.bind(socket);
    socket.write = (chunk: unknown, ...rest: unknown[]) => {
      if (String(chunk).startsWith('HTTP/1.1 101')) counter.count++;
      return write(chunk, ...rest);
    };
  };
  hub.server.httpServer.prependListener('upgrade', onUpgrade);
  counter.stop = () => void hub.server.httpServer.off('upgrade', onUpgrade);
  return counter;
}

describe('Engine.IO protocols other than 4', () => {
  it('a polling handshake with EIO=3 (or none) gets a plain 400 naming the supported clients', async () => {
    for (const query of ['EIO=3&transport=polling', 'transport=polling', 'EIO=5&transport=polling']) {
      const answer = await fetch(`${hub.url}/socket.io/?${query}`);
      assert.equal(answer.status, 400, query);
      // The hub's own error answer (PROTOCOL.md section 4), not Engine.IO's numeric one.
      const body = (await answer.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'bad_request');
      assert.match(body.error.message, SUPPORTED, body.error.message);
      assert.match(body.error.message, /Engine\.IO protocol 4/);
    }
  });

  it('a WebSocket upgrade with EIO=3 is refused before the upgrade, with the same sentence', async () => {
    const switches = countSwitches();
    try {
      await assert.rejects(RawWs.open(hub.port, { path: '/socket.io/?EIO=3&transport=websocket' }), (error) => {
        assert.ok(error instanceof HandshakeRefused, String(error));
        assert.equal(error.status, 400);
        assert.match(error.head, SUPPORTED);
        return true;
      });
      assert.equal(switches.count, 0, 'never switched protocols');
    } finally {
      switches.stop();
    }
  });

  for (const transports of [['polling'], ['websocket']]) {
    it(`the real socket.io-client 2.x over ${transports[0]} is refused with 400, never upgraded`, async () => {
      const switches = countSwitches();
      const statuses: number[] = [];
      const probe = (req: { url?: string }, res: { statusCode: number; once: (e: string, f: () => void) => void }) => {
        if (req.url?.startsWith('/socket.io/') === true) res.once('finish', () => statuses.push(res.statusCode));
      };
      hub.server.httpServer.on('request', probe as never);
      const errors: unknown[] = [];
      const socket = ioV2(hub.url, {
        transports,
        forceNew: true,
        reconnection: false,
        query: { token: await token() },
      });
      socket.on('connect_error', (error: unknown) => errors.push(error));
      socket.on('error', (error: unknown) => errors.push(error));
      try {
        await until(() => errors.length > 0, 'the 2.x client to fail', 10_000);
        assert.equal(socket.connected, false);
        assert.equal(switches.count, 0, 'the hub never answered 101');
        if (transports[0] === 'polling') assert.deepEqual([...new Set(statuses)], [400]);
      } finally {
        socket.close();
        switches.stop();
        hub.server.httpServer.off('request', probe as never);
      }
    });
  }

  it('socket.io-client 4.x (EIO=4) still connects on both transports', async () => {
    for (const mode of ['polling', 'websocket'] as const) {
      const client = await SioClient.connect(hub.url, mode, { auth: { token: await token() } });
      assert.equal((await client.call('subscribe', { channel: `eio4:${mode}` })).ok, true);
      client.close();
    }
  });

  it('a WebSocket upgrade joining an EIO=4 polling session is not refused for its query', async () => {
    // The upgrade of a session carries EIO=4 too; only the protocol version is checked.
    const client = await SioClient.connect(hub.url, 'upgrade', { auth: { token: await token() } });
    assert.equal(client.transport, 'websocket');
    client.close();
    const answer = await new Promise<number>((resolve) => {
      request(`${hub.url}/socket.io/?EIO=4&transport=polling`, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).end();
    });
    assert.equal(answer, 200);
  });
});
