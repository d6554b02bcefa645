/**
 * Development-only token endpoint for the sample apps, so they run with nothing but `npm start`.
 * It hands anyone who can reach the hub a token, which is only acceptable for a development
 * instance: it is on when both secrets were generated at start and the hub listens on loopback
 * (cli.ts decides), or when HERALD_DEMO=true says so explicitly. Each token is scoped to one
 * sample app's namespace and expires within the hour.
 *
 *   POST /demo/token {"app": "chat" | "orders" | "dashboard" | "llm" | "demo", "user"?: "display name"}
 *     -> {"token", "expiresIn", "userId", "channels", "publish"}
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readSmallJson, sameOrigin, sendError, sendJson } from './page-http.js';
import { mintToken } from './token.js';

const TTL_SECONDS = 3600;
/** Letters of any script, digits, spaces and the punctuation of real names (O'Brien, Jean-Luc, J. R.). */
const USER_NAME = /^[\p{L}\p{M}\p{N} _.'\u2019-]{1,32}$/u;

/** What each sample app may do: subscribe and publish in its own namespace only. */
const SCOPES: Record<string, { channels: string[]; publish: string[] }> = {
  // Chat: read and write rooms, including the ephemeral typing indicators.
  chat: { channels: ['chat:*'], publish: ['chat:*'] },
  // Order tracking: follow orders; `publish` lets the page's operator panel post status changes
  // through POST /api/publish, standing in for the shop's backend in the demo.
  orders: { channels: ['orders:*'], publish: ['orders:*'] },
  // Live dashboard: read only; the figures come from a backend script.
  dashboard: { channels: ['dashboard:*'], publish: [] },
  // LLM chat (Durable Streams): read conversations and answers; create a conversation's stream and
  // ask in the inbox. The model writes the conversations' entries and the answers with the API key.
  llm: { channels: ['ds:llm-chat/*'], publish: ['ds:llm-chat/inbox', 'ds:llm-chat/c/*'] },
  // The README's first look and the start banner's lines: the `demo` channels.
  demo: { channels: ['demo*'], publish: ['demo*'] },
};

export interface DemoTokenOptions {
  readonly jwtSecret: string;
  readonly jwtAudience?: string;
  readonly jwtIssuer?: string;
}

export async function handleDemoToken(
  options: DemoTokenOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (!sameOrigin(req)) {
    sendError(res, 403, 'origin_not_allowed', 'demo tokens are only for pages of this host');
    return;
  }
  const body = await readSmallJson(req);
  const app = body?.app;
  const scope = typeof app === 'string' && Object.hasOwn(SCOPES, app) ? SCOPES[app] : undefined;
  if (scope === undefined) {
    sendError(res, 400, 'bad_request', `app must be one of ${Object.keys(SCOPES).join(', ')}`);
    return;
  }
  const requested = typeof body?.user === 'string' ? body.user.trim() : '';
  if (requested !== '' && !USER_NAME.test(requested)) {
    sendError(
      res,
      400,
      'bad_request',
      'user must be 1 to 32 letters, digits, spaces, apostrophes, dots, dashes or underscores',
    );
    return;
  }
  const name = requested === '' ? `guest-${randomBytes(2).toString('hex')}` : requested;
  const userId = name.toLowerCase().replace(/\s+/g, '-');
  const token = await mintToken({
    secret: options.jwtSecret,
    sub: userId,
    channels: scope.channels,
    publish: scope.publish,
    info: { name },
    ttlSeconds: TTL_SECONDS,
    ...(options.jwtAudience === undefined ? {} : { audience: options.jwtAudience }),
    ...(options.jwtIssuer === undefined ? {} : { issuer: options.jwtIssuer }),
  });
  sendJson(res, 200, { token, expiresIn: TTL_SECONDS, userId, name, ...scope });
}
