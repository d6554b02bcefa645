/**
 * A real nginx, configured with the shipped deploy/herald-locations.conf, in front of two hub
 * nodes started with the real `herald serve` binary: WebSocket, SSE and long-poll clients all
 * receive through it, nothing is sticky, and SSE events are not buffered.
 *
 * The buffering check compares arrival times through nginx with a client connected straight to
 * a node. A buffering proxy holds small events for seconds (until 4 to 8 KB pile up or the
 * response ends), so the bound is generous: this checks configuration, it is not a benchmark.
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
import { openEventSource, type EventSourceClient } from '../support/sse.ts';
import { WsTestClient } from '../support/ws-client.ts';
import {
  REPO,
  median,
  metric,
  nginxCheck,
  selfSignedCert,
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
/** Extra latency through nginx that still counts as "not buffered". */
const BUFFERING_BOUND_MS = 500;
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
  const dir = mkdtempSync(join(tmpdir(), 'herald-nginx-'));
  // nginx started as root runs its workers as nobody, who must reach the temp paths.
  chmodSync(dir, 0o755);
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));

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
  const conf = `worker_processes 1;
events { worker_connections 512; }
http {
  ${tempPaths(dir)}
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream herald { ${upstreams} keepalive 16; }
  upstream herald_socketio { ip_hash; ${upstreams} }
  server {
    listen 127.0.0.1:${port};
    add_header X-Herald-Upstream $upstream_addr always;
    include ${LOCATIONS};
  }
}
`;
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
      t.diagnostic(
        `SSE through nginx vs direct: median ${median(extra).toFixed(2)} ms extra, worst ${worst.toFixed(2)} ms ` +
          `(bound ${BUFFERING_BOUND_MS} ms, ${rounds} events)`,
      );
      assert.ok(worst < BUFFERING_BOUND_MS, `nginx delayed an SSE event by ${worst.toFixed(0)} ms: buffered?`);
    } finally {
      for (const c of clients) c.source.close();
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
