/**
 * A real nginx, configured with the shipped deploy/herald-locations.conf, in front of two hub
 * nodes started with the real `herald serve` binary: WebSocket, SSE and long-poll clients all
 * receive through it, nothing is sticky, and SSE events are not buffered.
 *
 * The buffering check is structural: a buffering proxy holds a small event until a buffer's worth
 * of bytes follows or the response ends (nginx has no flush timer), so each lone event must come
 * through nginx at all before the next one is published. How much later than a client connected
 * straight to a node is reported, not asserted: this checks configuration, it is not a
 * benchmark. A negative control shows the difference is real: through a second nginx
 * that buffers SSE the same event is withheld until filler fills the buffer, while a naive
 * buffering location that honours the hub's `X-Accel-Buffering: no` streams.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, test } from 'node:test';
import { runHerald, type HeraldProcess } from '../support/cli.ts';
import { API_KEY, JWT_SECRET, token, until } from '../support/hub.ts';
import { requireService } from '../support/services.ts';
import { openEventSource, RawSse, type EventSourceClient } from '../support/sse.ts';
import { WsTestClient } from '../support/ws-client.ts';
import {
  REPO,
  median,
  metric,
  nginxCheck,
  selfSignedCert,
  spareDistinctPorts,
  sparePort,
  startNginx,
  tempPaths,
  type NginxProcess,
} from './support.ts';

/**
 * The nodes share this broker (Redis, as in production). HERALD_NGINX_TEST_BROKER=memory runs
 * them on two separate memory brokers instead: every publication is then sent to each node, and
 * each client receives it from the node it landed on.
 */
const BROKER = process.env.HERALD_NGINX_TEST_BROKER ?? 'redis://127.0.0.1:6379';
const SHARED_BROKER = BROKER !== 'memory';
const LOCATIONS = join(REPO, 'deploy', 'herald-locations.conf');
/** Channels of this run: Redis keeps history between runs. */
const RUN = randomBytes(4).toString('hex');

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

test('nginx in front of two hub nodes', { timeout: 90_000 }, async (t) => {
  if (!(await requireService(t, 'nginx'))) return;
  if (SHARED_BROKER && BROKER.startsWith('redis') && !(await requireService(t, 'redis'))) return;
  assert.ok(
    existsSync(join(REPO, 'apps/herald/dist/cli.js')),
    'the herald binary is not built: run `npm run build` first',
  );
  const dir = nginxPrefix('herald-nginx-');

  await t.test('the shipped nginx.conf passes nginx -t', () => {
    const { certFile, keyFile } = selfSignedCert(dir);
    const shipped = readFileSync(join(REPO, 'deploy/nginx.conf'), 'utf8')
      .replaceAll('/etc/nginx/herald-locations.conf', LOCATIONS)
      .replace(/ssl_certificate\s+\S+;/, `ssl_certificate ${certFile};`)
      .replace(/ssl_certificate_key\s+\S+;/, `ssl_certificate_key ${keyFile};`);
    const problem = nginxCheck(dir, `events {}\nhttp {\n  ${tempPaths(dir)}\n${shipped}\n}\n`);
    assert.equal(problem, null, `nginx -t refused deploy/nginx.conf:\n${problem}`);
  });

  const env = {
    HOST: '127.0.0.1',
    PORT: '0',
    HERALD_API_KEY: API_KEY,
    HERALD_JWT_SECRET: JWT_SECRET,
    HERALD_BROKER: BROKER,
    HERALD_LOG_LEVEL: 'warn',
  };
  const nodes: HeraldProcess[] = [runHerald(['serve'], env), runHerald(['serve'], env)];
  cleanup.push(() => nodes.forEach((n) => n.kill()));
  const nodeUrls = await Promise.all(nodes.map((n) => n.listening));
  await Promise.all(nodeUrls.map(waitReady));

  const port = await sparePort();
  const upstreams = nodeUrls.map((u) => `server ${new URL(u).host};`).join(' ');
  /** A whole nginx.conf: `servers` (server blocks) behind the two nodes, every file under `prefix`. */
  const clusterConf = (prefix: string, servers: string): string => `worker_processes 1;
events { worker_connections 512; }
http {
  ${tempPaths(prefix)}
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream herald { ${upstreams} keepalive 16; }
  upstream herald_socketio { ip_hash; ${upstreams} }
  ${servers}
}
`;
  const conf = clusterConf(
    dir,
    `server {
    listen 127.0.0.1:${port};
    add_header X-Herald-Upstream $upstream_addr always;
    include ${LOCATIONS};
  }`,
  );
  const nginx: NginxProcess = await startNginx(dir, conf, `http://127.0.0.1:${port}/healthz`);
  cleanup.push(() => nginx.stop());
  const proxied = `http://127.0.0.1:${port}`;
  const jwt = await token({ sub: 'deploy-test', channels: ['deploy:*'] });

  /** Publishes so that every client receives it once, whichever node it is on. */
  const publishToAll = async (channel: string, data: unknown): Promise<void> => {
    const targets = SHARED_BROKER ? [proxied] : nodeUrls;
    await Promise.all(
      targets.map(async (base) => {
        const response = await fetch(`${base}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel, data }),
        });
        assert.equal(response.status, 200, await response.text());
      }),
    );
  };
  const connectionsOn = (transport: string): Promise<number> =>
    Promise.all(nodeUrls.map((u) => metric(u, 'herald_connections', `transport="${transport}"`))).then((counts) =>
      counts.reduce((a, b) => a + b, 0),
    );

  /** Distinct clients in a channel's presence, over both nodes (each has its own on memory brokers). */
  const presentClients = async (channel: string): Promise<number> => {
    const lists = await Promise.all(
      nodeUrls.map(async (u) => {
        const response = await fetch(`${u}/api/channels/${encodeURIComponent(channel)}/presence`, {
          headers: { authorization: `Bearer ${API_KEY}` },
        });
        assert.equal(response.status, 200);
        return ((await response.json()) as { clients: Array<{ clientId: string }> }).clients;
      }),
    );
    return new Set(lists.flat().map((c) => c.clientId)).size;
  };

  await t.test('requests are spread over both nodes', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const response = await fetch(`${proxied}/readyz`);
      assert.equal(response.status, 200);
      seen.add(response.headers.get('x-herald-upstream') ?? '');
    }
    assert.deepEqual([...seen].sort(), nodeUrls.map((u) => new URL(u).host).sort());
  });

  await t.test('WebSocket, SSE and long-poll clients all receive through nginx', async () => {
    const channel = `deploy:all-${RUN}`;
    // A browser page on the proxied origin: the hub must see the Host the browser used.
    const origin = { Origin: proxied };
    const sockets: WsTestClient[] = [];
    const streams: EventSourceClient[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const ws = await WsTestClient.connect(`ws://127.0.0.1:${port}/ws`, jwt, { headers: origin });
        sockets.push(ws);
        const reply = await ws.call('subscribe', { channel });
        assert.equal(reply.error, undefined, JSON.stringify(reply.error));
      }
      for (let i = 0; i < 2; i++) {
        streams.push(openEventSource(`${proxied}/sse?channel=${channel}&token=${jwt}`, { headers: origin }));
      }
      await until(() => streams.every((s) => s.control.some((c) => c.type === 'herald.connected')), 'SSE connected');
      const polls = [0, 1].map(() =>
        fetch(`${proxied}/poll?channel=${channel}&timeout=20&token=${jwt}`, { headers: origin }).then((r) => r.json()),
      );
      const deadline = Date.now() + 5000;
      while ((await connectionsOn('poll')) < 2) {
        assert.ok(Date.now() < deadline, 'the long-polls did not reach the nodes');
        await new Promise((r) => setTimeout(r, 25));
      }
      // Nothing is sticky: the clients landed on both nodes.
      for (const url of nodeUrls) assert.ok((await metric(url, 'herald_connections')) >= 2, `${url} got no clients`);

      await publishToAll(channel, { hello: 'through nginx' });
      const answers = (await Promise.all(polls)) as Array<{ publications: Array<{ data: unknown }> }>;
      for (const answer of answers)
        assert.deepEqual(
          answer.publications.map((p) => p.data),
          [{ hello: 'through nginx' }],
        );
      await until(
        () =>
          sockets.every((ws) => ws.pushes.some((p) => p.push === 'pub')) && streams.every((s) => s.messages.length > 0),
        'WebSocket and SSE deliveries',
      );
      for (const ws of sockets) {
        assert.deepEqual(
          ws.pushes.filter((p) => p.push === 'pub').map((p) => p.pub.data),
          [{ hello: 'through nginx' }],
        );
      }
      for (const s of streams)
        assert.deepEqual(
          s.messages.map((m) => m.data),
          [{ hello: 'through nginx' }],
        );
    } finally {
      for (const ws of sockets) ws.socket.close();
      for (const s of streams) s.source.close();
    }
  });

  await t.test('SSE events are not buffered by nginx', async () => {
    const channel = `deploy:latency-${RUN}`;
    const url = (base: string): string => `${base}/sse?channel=${channel}&token=${jwt}`;
    const arrivals = new Map<string, Map<number, number>>();
    const follow = (name: string, base: string): EventSourceClient => {
      const client = openEventSource(url(base));
      const seen = new Map<number, number>();
      arrivals.set(name, seen);
      client.source.addEventListener('message', (e) => seen.set(JSON.parse(e.data).data.seq, performance.now()));
      return client;
    };
    const clients = [follow('nginx', proxied), ...nodeUrls.map((u, i) => follow(`direct${i}`, u))];
    try {
      await until(
        () => clients.every((c) => c.control.some((e) => e.type === 'herald.connected')),
        'the SSE streams to open',
      );
      const rounds = 5;
      const extra: number[] = [];
      for (let seq = 0; seq < rounds; seq++) {
        await publishToAll(channel, { seq });
        await until(
          () => ['nginx', 'direct0', 'direct1'].every((name) => arrivals.get(name)?.has(seq)),
          `event ${seq} through nginx and direct`,
          5000,
        );
        const direct = median([arrivals.get('direct0')?.get(seq) ?? 0, arrivals.get('direct1')?.get(seq) ?? 0]);
        extra.push((arrivals.get('nginx')?.get(seq) ?? 0) - direct);
        await new Promise((r) => setTimeout(r, 100));
      }
      const worst = Math.max(...extra);
      // Every lone event came through (the `until` above): nothing sat in a buffer.
      t.diagnostic(
        `SSE through nginx vs direct: median ${median(extra).toFixed(2)} ms extra, worst ${worst.toFixed(2)} ms ` +
          `(${rounds} lone events)`,
      );
    } finally {
      for (const c of clients) c.source.close();
    }
  });

  await t.test('negative control: an nginx that buffers SSE withholds a small event', async () => {
    // A second nginx in front of the same nodes, three wrong-ish catch-all locations, all with
    // buffering on and buffers far larger than an event, each on its own port:
    // - buffered: also ignores the hub's `X-Accel-Buffering: no`, and speaks nginx's default
    //   HTTP/1.0 to the node (a stream without chunks): the control, it must withhold the event;
    // - naive: the same but honouring the header, as a user config without our location file:
    //   the header alone must keep it streaming;
    // - chunked: ignores the header like `buffered` but speaks HTTP/1.1, as our locations do. Not
    //   asserted (nginx internals): nginx 1.22 passes each complete chunk on even when buffering.
    const prefix = nginxPrefix('herald-nginx-buffering-');
    const ports = await spareDistinctPorts(3);
    const buffering = 'proxy_buffering on; proxy_buffer_size 64k; proxy_buffers 8 64k; proxy_busy_buffers_size 128k;';
    const locations = {
      buffered: `proxy_pass http://herald; ${buffering} proxy_ignore_headers X-Accel-Buffering;`,
      naive: `proxy_pass http://herald; ${buffering}`,
      chunked: `proxy_pass http://herald; proxy_http_version 1.1; proxy_set_header Connection ""; ${buffering} proxy_ignore_headers X-Accel-Buffering;`,
    };
    const servers = Object.values(locations).map(
      (location, i) => `server { listen 127.0.0.1:${ports[i]}; location / { ${location} } }`,
    );
    const control = await startNginx(
      prefix,
      clusterConf(prefix, servers.join('\n  ')),
      `http://127.0.0.1:${ports[0]}/healthz`,
    );
    cleanup.push(() => control.stop());

    const bases = {
      direct: nodeUrls[0] as string,
      shipped: proxied,
      ...Object.fromEntries(Object.keys(locations).map((name, i) => [name, `http://127.0.0.1:${ports[i]}`])),
    } as Record<'direct' | 'shipped' | keyof typeof locations, string>;
    type Name = keyof typeof bases;
    const names = Object.keys(bases) as Name[];
    const channel = `deploy:control-${RUN}`;
    const clients: Partial<Record<Name, RawSse>> = {};
    const opening = names.map((name) =>
      RawSse.open(`${bases[name]}/sse?channel=${channel}&token=${jwt}`).then((client) => (clients[name] = client)),
    );
    const received = (name: Name, probe: string): boolean =>
      clients[name]?.publications().some((p) => p.data?.probe === probe) ?? false;
    try {
      // The buffering nginx holds even the response headers (less than a packet's worth), so the
      // hub's presence list says when all five streams are subscribed.
      const deadline = Date.now() + 5000;
      while ((await presentClients(channel)) < names.length) {
        assert.ok(Date.now() < deadline, 'the SSE streams did not all reach the nodes');
        await new Promise((r) => setTimeout(r, 25));
      }
      for (const name of names.filter((n) => n !== 'buffered')) {
        await until(() => clients[name] !== undefined, `${name} response headers`);
        assert.equal(clients[name]?.status, 200, `${name}: ${clients[name]?.body}`);
      }
      // nginx consumes X-Accel-* headers, so only the direct client sees what the hub sent.
      assert.equal(clients.direct?.headers.get('x-accel-buffering'), 'no');

      const published = performance.now();
      await publishToAll(channel, { probe: 'small' });
      await until(
        () => received('direct', 'small') && received('shipped', 'small'),
        'the small event, direct and through the shipped config',
      );
      const promptMs = performance.now() - published;
      // Give the buffering nginx as long again (at least 1 s): it has no flush timer, so what it
      // holds stays held until more bytes come or the stream ends.
      await new Promise((r) => setTimeout(r, Math.max(1000, promptMs)));
      const heldMs = performance.now() - published;
      const headersHeld = clients.buffered === undefined;
      assert.equal(received('buffered', 'small'), false, 'the buffering nginx passed the small event on at once');
      assert.ok(received('naive', 'small'), 'X-Accel-Buffering: no did not stop a buffering nginx location');

      // Filler until the buffer fills: the withheld event then comes out, first and intact.
      const fillerBytes = 16_384;
      let filler = 0;
      for (let i = 0; i < 64 && !received('buffered', 'small'); i++) {
        await publishToAll(channel, { probe: `filler-${i}`, pad: 'x'.repeat(fillerBytes) });
        filler += fillerBytes;
        await new Promise((r) => setTimeout(r, 20));
      }
      await until(() => received('buffered', 'small'), 'the withheld event once the buffer filled');
      assert.equal(clients.buffered?.status, 200);
      assert.equal(clients.buffered?.publications()[0]?.data?.probe, 'small');
      t.diagnostic(
        JSON.stringify({
          negativeControl: 'nginx proxy_buffering on, X-Accel-Buffering ignored, HTTP/1.0 upstream, 8x64k buffers',
          directAndShippedMs: Number(promptMs.toFixed(2)),
          withheldForAtLeastMs: Math.round(heldMs),
          headersHeld,
          fillerBytesUntilReleased: filler,
          naiveLocationStreamed: received('naive', 'small'),
          http11HeaderIgnoredStreamed: received('chunked', 'small'),
        }),
      );
    } finally {
      // A stream still held by nginx ends when nginx stops (cleanup).
      for (const open of opening)
        void open.then(
          (client) => client.close(),
          () => undefined,
        );
    }
  });

  await t.test(
    'the admin stream through nginx lists both nodes',
    { skip: !SHARED_BROKER && 'needs a shared broker' },
    async () => {
      const session = await fetch(`${proxied}/admin/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ apiKey: API_KEY }),
      });
      assert.equal(session.status, 200);
      assert.match(session.headers.get('set-cookie') ?? '', /HttpOnly/);
      const { token: streamToken, channel } = await session.json();
      const admin = openEventSource(`${proxied}/sse?channel=${encodeURIComponent(channel)}&token=${streamToken}`, {
        events: ['node'],
      });
      try {
        // Each node's heartbeat reaches the one stream, whichever node it is on.
        await until(
          () => new Set(admin.messages.map((m) => m.data.node.id)).size === 2,
          'snapshots of both nodes',
          5000,
        );
        const addresses = new Set(admin.messages.map((m) => m.data.node.address));
        assert.deepEqual([...addresses].sort(), nodeUrls.map((u) => new URL(u).host).sort());
      } finally {
        admin.source.close();
      }
    },
  );
});

/** A fresh nginx prefix, removed after the run. */
function nginxPrefix(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), name));
  // nginx started as root runs its workers as nobody, who must reach the temp paths.
  chmodSync(dir, 0o755);
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function waitReady(base: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const response = await fetch(`${base}/readyz`);
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${base} never became ready`);
}
