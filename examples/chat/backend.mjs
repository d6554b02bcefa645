// The chat sample's own backend: cookie sessions and the hooks that decide
// (docs/protocol-extensions.md, "Hooks that decide"). Run it beside the hub:
//
//   node examples/chat/backend.mjs            # listens on 127.0.0.1:8090
//   HERALD_HOOK_CONNECT_URL=http://127.0.0.1:8090/hooks/connect \
//   HERALD_HOOK_PUBLISH_URL=http://127.0.0.1:8090/hooks/publish \
//   HERALD_HOOK_RPC_URL=http://127.0.0.1:8090/hooks/rpc HERALD_HOOK_SECRET=dev-hook-secret npm start
//
// then open http://127.0.0.1:8080/examples/chat/?backend=http://127.0.0.1:8090
// Cookies belong to a host, not a port: the session cookie set here is sent to the hub too.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { verifyWebhook } from '@herald/integrations/webhook-signature';

export const ROOMS = ['lobby', 'random', 'help'];
const MAX_MESSAGE = 500;

/** Starts the backend; resolves with its URL and a close function. */
export async function startChatBackend({ port = 0, host = '127.0.0.1', secret }) {
  /** session id -> {userId, name}: the app's own sessions (a database in a real app). */
  const sessions = new Map();
  const server = createServer(async (req, res) => {
    const body = await new Promise((resolve) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (chunk) => (raw += chunk));
      req.on('end', () => resolve(raw));
    });
    const json = (status, value, headers = {}) =>
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value));
    const cors = req.headers.origin
      ? {
          'access-control-allow-origin': req.headers.origin,
          'access-control-allow-credentials': 'true',
          vary: 'Origin',
        }
      : {};
    if (req.method === 'OPTIONS') {
      return res
        .writeHead(204, {
          ...cors,
          'access-control-allow-headers': 'content-type',
          'access-control-allow-methods': 'POST',
        })
        .end();
    }
    if (req.url === '/login' && req.method === 'POST') {
      const name =
        String(JSON.parse(body || '{}').name ?? '')
          .trim()
          .slice(0, 40) || 'guest';
      const id = randomUUID();
      const user = { userId: `u-${id.slice(0, 8)}`, name };
      sessions.set(id, user);
      return json(200, user, { ...cors, 'set-cookie': `chat_session=${id}; Path=/; HttpOnly; SameSite=Lax` });
    }
    if (!req.url?.startsWith('/hooks/')) return json(404, { error: 'not found' });
    let hook;
    try {
      hook = verifyWebhook(body, req.headers['herald-signature'], secret);
    } catch {
      return json(401, { error: 'bad signature' });
    }
    const sessionId = /(?:^|;\s*)chat_session=([^;]+)/.exec(hook.headers.cookie ?? '')?.[1];
    switch (hook.hook) {
      case 'connect': {
        const user = sessionId === undefined ? undefined : sessions.get(sessionId);
        if (user === undefined) return json(200, { error: { code: 'unauthorized', message: 'log in first' } });
        return json(200, { user: user.userId, info: { name: user.name }, channels: ['chat:*'], publish: ['chat:*'] });
      }
      case 'publish': {
        if (hook.data?.typing === true) return json(200, {});
        const text = typeof hook.data?.text === 'string' ? hook.data.text.trim() : '';
        if (text === '') return json(200, { error: { code: 'bad_request', message: 'an empty message was not sent' } });
        if (text.length > MAX_MESSAGE) {
          return json(200, { error: { code: 'too_large', message: `messages are at most ${MAX_MESSAGE} characters` } });
        }
        return json(200, { data: { text } });
      }
      case 'rpc':
        if (hook.method === 'rooms') return json(200, { data: { rooms: ROOMS } });
        return json(200, { error: { code: 'not_found', message: `no method ${hook.method}` } });
      default:
        return json(200, { error: { code: 'bad_request', message: `no ${hook.hook} hook here` } });
    }
  });
  await new Promise((resolve) => server.listen(port, host, resolve));
  const url = `http://${host}:${server.address().port}`;
  return {
    url,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const backend = await startChatBackend({
    port: Number(process.env.CHAT_BACKEND_PORT ?? 8090),
    secret: process.env.HERALD_HOOK_SECRET ?? 'dev-hook-secret',
  });
  process.stdout.write(`chat backend on ${backend.url}\n`);
}
