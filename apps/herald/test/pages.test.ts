/**
 * The pages' own endpoints over real HTTP: admin sign-in (the key only in a POST body, an HttpOnly
 * cookie, a stream token that reads `_herald:stats` and nothing else), the admin snapshots on that
 * channel, turning the admin page off, the demo token endpoint, and static files that never leave
 * their folders.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { HeraldServer } from '@herald/server';
import { pages, type PagesOptions } from '../src/pages.ts';
import { API_KEY, JWT_SECRET, until } from '../../../test/support/hub.ts';
import { RawSse } from '../../../test/support/sse.ts';

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

async function site(options: Partial<PagesOptions> = {}): Promise<{ url: string; server: HeraldServer }> {
  const site = pages({ apiKey: API_KEY, jwtSecret: JWT_SECRET, admin: true, demo: false, ...options });
  const server = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET, routes: site.routes });
  const { port } = await server.listen(0, '127.0.0.1');
  site.attach(server);
  cleanup.push(async () => {
    site.detach();
    await server.close();
  });
  return { url: `http://127.0.0.1:${port}`, server };
}

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

test('admin sign-in, session cookie and stream token', async () => {
  const { url } = await site();
  const page = await fetch(`${url}/admin`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  assert.match(await page.text(), /<title>Herald admin<\/title>/);

  const wrong = await post(`${url}/admin/session`, { apiKey: 'wrong-key-0123456789' });
  assert.equal(wrong.status, 401);
  assert.equal((await wrong.json()).error.code, 'unauthorized');
  assert.equal(wrong.headers.get('set-cookie'), null);

  const foreign = await post(`${url}/admin/session`, { apiKey: API_KEY }, { origin: 'https://evil.example' });
  assert.equal(foreign.status, 403, 'a page of another site cannot sign in');

  const ok = await post(`${url}/admin/session`, { apiKey: API_KEY });
  assert.equal(ok.status, 200);
  const cookie = ok.headers.get('set-cookie') ?? '';
  assert.match(cookie, /^herald_admin=[^;]+; Path=\/admin; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  const { token, channel, expiresIn } = await ok.json();
  assert.equal(channel, '_herald:stats');
  assert.ok(expiresIn > 0 && expiresIn <= 3600);

  // The stream token reads the stats channel and nothing else.
  const refused = await fetch(`${url}/sse?channel=orders:1&token=${token}`);
  assert.equal(refused.status, 403);
  await refused.arrayBuffer();

  // The cookie alone renews the token; without it there is nothing to renew.
  const renewed = await fetch(`${url}/admin/token`, {
    method: 'POST',
    headers: { cookie: cookie.split(';')[0] ?? '' },
  });
  assert.equal(renewed.status, 200);
  assert.equal((await renewed.json()).channel, '_herald:stats');
  const anonymous = await fetch(`${url}/admin/token`, { method: 'POST' });
  assert.equal(anonymous.status, 401);
  const forged = await fetch(`${url}/admin/token`, { method: 'POST', headers: { cookie: `herald_admin=${token}` } });
  assert.equal(forged.status, 401, 'a client token is not an admin session');

  const out = await fetch(`${url}/admin/logout`, { method: 'POST' });
  assert.match(out.headers.get('set-cookie') ?? '', /herald_admin=; .*Max-Age=0/);
});

test('admin snapshots arrive once a second on _herald:stats', async () => {
  const { url } = await site();
  const { token } = await (await post(`${url}/admin/session`, { apiKey: API_KEY })).json();
  const sse = await RawSse.open(`${url}/sse?channel=_herald:stats&token=${token}`);
  try {
    assert.equal(sse.status, 200);
    await until(() => sse.named('node').length >= 2, 'two snapshots', 5000);
    const [first, second] = sse.named('node').map((p) => p.data);
    assert.equal(first.node.id, second.node.id);
    assert.ok(second.ts > first.ts);
    assert.deepEqual(first.broker, { name: 'memory', ready: true });
    // The admin stream itself is a connection, and is reported as a viewer.
    assert.equal(second.connections.sse, 1);
    assert.equal(second.viewers.sse, 1);
    assert.equal(second.totals.publications, 0, 'snapshots are not counted as publications');
    assert.deepEqual(second.channels, { count: 0, top: [] }, 'internal channels are not listed');
    for (const key of ['cpuPercent', 'rssBytes', 'uptime', 'loopDelayMs']) {
      assert.equal(typeof second.process[key], 'number', key);
    }
    // Ephemeral: no id line, nothing stored.
    assert.ok(sse.events.filter((e) => e.event === 'node').every((e) => e.id === undefined));
  } finally {
    sse.close();
  }
});

test('HERALD_ADMIN=false removes the admin page and its endpoints', async () => {
  const { url, server } = await site({ admin: false });
  for (const [method, path] of [
    ['GET', '/admin'],
    ['GET', '/admin/admin.js'],
    ['POST', '/admin/session'],
  ] as const) {
    const response = await fetch(`${url}${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
    assert.equal(response.status, 404, `${method} ${path}`);
    await response.arrayBuffer();
  }
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(server.hub.stats.publications, 0);
});

test('the demo token endpoint: only when enabled, scoped per app', async () => {
  const off = await site({ demo: false });
  assert.equal((await post(`${off.url}/demo/token`, { app: 'chat' })).status, 404);

  const { url } = await site({ demo: true });
  const bad = await post(`${url}/demo/token`, { app: 'admin' });
  assert.equal(bad.status, 400);
  const badName = await post(`${url}/demo/token`, { app: 'chat', user: '<script>' });
  assert.equal(badName.status, 400);
  const chat = await (await post(`${url}/demo/token`, { app: 'chat', user: 'Ada Lovelace' })).json();
  assert.equal(chat.userId, 'ada-lovelace');
  assert.deepEqual([chat.channels, chat.publish], [['chat:*'], ['chat:*']]);
  const claims = JSON.parse(Buffer.from(chat.token.split('.')[1], 'base64url').toString());
  assert.deepEqual(claims.info, { name: 'Ada Lovelace' });
  assert.ok(claims.exp - claims.iat <= 3600);
  // The dashboard's token reads its namespace only.
  const dash = await (await post(`${url}/demo/token`, { app: 'dashboard' })).json();
  const other = await fetch(`${url}/sse?channel=chat:lobby&token=${dash.token}`);
  assert.equal(other.status, 403);
  await other.arrayBuffer();
  const foreign = await post(`${url}/demo/token`, { app: 'chat' }, { origin: 'https://evil.example' });
  assert.equal(foreign.status, 403);
});

test('static files: pages, sample apps, and nothing outside their folders', async () => {
  const { url } = await site();
  const landing = await fetch(`${url}/`);
  assert.equal(landing.status, 200);
  assert.match(landing.headers.get('content-type') ?? '', /text\/html/);
  await landing.arrayBuffer();
  const redirect = await fetch(`${url}/examples/chat`, { redirect: 'manual' });
  assert.equal(redirect.status, 308);
  assert.equal(redirect.headers.get('location'), '/examples/chat/');
  const chat = await fetch(`${url}/examples/chat/`);
  assert.equal(chat.status, 200);
  assert.match(await chat.text(), /<title>Chat/);
  const script = await fetch(`${url}/examples/order-tracking/app.js`);
  assert.match(script.headers.get('content-type') ?? '', /text\/javascript/);
  await script.arrayBuffer();
  for (const path of [
    '/examples/order-tracking/publish-status.mjs',
    '/examples/chat/README.md',
    '/examples/chat/%2e%2e/%2e%2e/package.json',
    '/%2e%2e/src/pages.ts',
    '/lib/..%2f..%2fpackage.json',
    '/examples/..%2f..%2fpackage.json/x',
  ]) {
    const response = await fetch(`${url}${path}`);
    assert.equal(response.status, 404, path);
    await response.arrayBuffer();
  }
});
