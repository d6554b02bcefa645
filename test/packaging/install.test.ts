/**
 * Proof that a user can install the packages: the public packages are packed (`npm pack`), the
 * tarballs installed with npm into a scratch app outside the repository (their third-party
 * dependencies come from the npm cache or registry), and the scratch app, using only the installed
 * packages, starts a hub, connects a client over WebSocket, publishes and receives. The server
 * client and the React bindings are imported there too. Needs a built repository.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { npmPack } from './support.ts';

const INSTALLED = [
  'packages/protocol',
  'packages/server',
  'packages/client',
  'packages/server-client',
  'packages/react',
];

const APP = `
import { HeraldServer } from '@herald/server';
import { Herald } from '@herald/client';
import { HeraldServerClient } from '@herald/server-client';
import { useChannel } from '@herald/react';
import WebSocket from 'ws';

if (typeof useChannel !== 'function') throw new Error('@herald/react did not load');
const server = new HeraldServer({ apiKey: 'scratch-api-key-0123456789', jwtSecret: 'scratch-jwt-secret-0123456789abcdef0123', anonymousChannels: ['public:*'] });
const { port } = await server.listen(0, '127.0.0.1');
const client = new Herald('http://127.0.0.1:' + port, { WebSocket });
const sub = client.subscribe('public:news');
const got = new Promise((resolve) => sub.on('publication', (p) => resolve(p.data)));
await new Promise((resolve) => sub.on('state', (s) => s === 'subscribed' && resolve()));
const api = new HeraldServerClient({ url: 'http://127.0.0.1:' + port, apiKey: 'scratch-api-key-0123456789' });
await api.publish({ channel: 'public:news', data: { hello: 'installed' } });
console.log(JSON.stringify({ received: await got, transport: client.transport }));
client.close();
await server.close();
`;

test('the packed tarballs install into a scratch app, which starts a hub and connects a client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-install-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const tarballs = npmPack(INSTALLED, dir).map((p) => join(dir, p.filename));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  execFileSync(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      ...tarballs,
      'ws@^8.17.1',
      'react@^19',
    ],
    { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 },
  );
  writeFileSync(join(dir, 'app.mjs'), APP);
  const out = execFileSync(process.execPath, ['app.mjs'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.deepEqual(JSON.parse(out.trim()), { received: { hello: 'installed' }, transport: 'websocket' });
});
