/**
 * A real application backend for the hook tests: a node:http server that checks each request's
 * Herald-Signature with the webhooks' own verifier, records it, and answers as the contract says.
 * The cookie `session=<user>` is a session; special users and channels make it misbehave:
 * `slow` (answers after 3 s), `garbage` (not JSON), `bad` (refuses).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '@herald/integrations/webhook-signature';

export const HOOK_SECRET = 'hook-secret-0123456789abcdef';

export interface Backend {
  readonly url: string;
  readonly requests: any[];
  close(): Promise<void>;
}

function session(headers: Record<string, string>): string | undefined {
  return /(?:^|;\s*)session=([^;]+)/.exec(headers.cookie ?? '')?.[1];
}

type Reply = { body: unknown } | 'slow' | 'garbage';

function decide(req: any): Reply {
  const user = session(req.headers ?? {});
  switch (req.hook) {
    case 'connect': {
      if (user === 'slow' || user === 'garbage') return user;
      if (user === undefined || user === 'bad')
        return { body: { error: { code: 'unauthorized', message: 'no session' } } };
      const expiresAt = user === 'short' ? Math.floor(Date.now() / 1000) + 2 : undefined;
      return {
        body: { user, info: { name: user.toUpperCase() }, channels: ['room:*'], publish: ['room:*'], expiresAt },
      };
    }
    case 'subscribe': {
      const [kind, owner] = String(req.channel).split(':');
      if (kind === 'slow' || kind === 'garbage') return kind;
      if (kind === 'private' && owner === req.user) return { body: { info: { seat: 7 } } };
      return { body: { error: { code: 'forbidden', message: `not your channel` } } };
    }
    case 'publish': {
      if (req.channel === 'room:slow') return 'slow';
      if (req.channel === 'room:garbage') return 'garbage';
      const text = typeof req.data?.text === 'string' ? req.data.text.trim() : '';
      if (text === '') return { body: { error: { code: 'bad_request', message: 'empty message' } } };
      if (text.length > 20) return { body: { error: { code: 'too_large', message: 'at most 20 characters' } } };
      if (text === 'keep') return { body: {} };
      return { body: { data: { text, by: req.user } } };
    }
    case 'refresh':
      return { body: { expiresAt: Math.floor(Date.now() / 1000) + 60 } };
    case 'rpc':
      if (req.method === 'slow' || req.method === 'garbage') return req.method;
      if (req.method === 'rooms')
        return { body: { data: { rooms: ['room:a', 'room:b'], for: req.user, echo: req.data } } };
      return { body: { error: { code: 'not_found', message: `no method ${req.method}` } } };
  }
  return { body: { error: { code: 'bad_request', message: 'unknown hook' } } };
}

export async function startBackend(): Promise<Backend> {
  const requests: any[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      let body: any;
      try {
        body = verifyWebhook(raw, req.headers['herald-signature'], HOOK_SECRET);
      } catch (error) {
        res.writeHead(401).end(String(error));
        return;
      }
      requests.push(body);
      const reply = decide(body);
      if (reply === 'garbage') return void res.writeHead(200, { 'content-type': 'application/json' }).end('<html>oops');
      if (reply === 'slow') {
        const t = setTimeout(() => {
          timers.delete(t);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        }, 3000);
        timers.add(t);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
