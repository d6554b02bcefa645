/**
 * Everything the hub serves besides the protocol: the landing page, the admin page (issue 8),
 * the sample apps under /examples/<name>/ and the development token endpoint they use.
 *
 * Static files come from apps/herald/public/ and examples/<name>/public/ only; a path that would
 * leave those folders is not found. The admin page and its endpoints exist only while enabled
 * (HERALD_ADMIN, default on); the demo token endpoint only in development (see demo-tokens.ts).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HeraldServer } from '@herald/server';
import { AdminFeed } from './admin-feed.js';
import { AdminRoutes } from './admin.js';
import { handleDemoToken } from './demo-tokens.js';

const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));
/** The sample apps live at the repository root; an installed package has none and serves none. */
const EXAMPLES_DIR = fileURLToPath(new URL('../../../examples/', import.meta.url));
const EXAMPLE_NAME = /^[a-z0-9-]{1,64}$/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  // The SDK bundle's source map (herald-client.js.map).
  '.map': 'application/json; charset=utf-8',
};

/** The admin page talks to its own origin only and is never framed. */
const ADMIN_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

export interface PagesOptions {
  readonly apiKey: string;
  readonly jwtSecret: string;
  readonly jwtAudience?: string;
  readonly jwtIssuer?: string;
  /** The admin page and its endpoints (HERALD_ADMIN). */
  readonly admin: boolean;
  /** The development token endpoint for the sample apps (see demo-tokens.ts). */
  readonly demo: boolean;
}

export interface Pages {
  /** The hub's `routes` option. */
  readonly routes: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;
  /** Starts the admin snapshots of this hub (once a second on `_herald:stats`); a no-op when admin is off. */
  attach(server: HeraldServer): void;
  /** Stops them (the hub stops on its own; this is for embedding and tests). */
  detach(): void;
}

export function pages(options: PagesOptions): Pages {
  const admin = options.admin ? new AdminRoutes(options) : undefined;
  let feed: AdminFeed | undefined;

  const routes = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const path = url.pathname;
    if (path === '/admin' || path.startsWith('/admin/')) {
      if (admin === undefined) return false;
      if (await admin.handle(req, res, path)) return true;
      const file = path === '/admin' || path === '/admin/' ? 'admin/index.html' : path.slice(1);
      return serveFile(req, res, PUBLIC_DIR, file, ADMIN_HEADERS);
    }
    if (path === '/demo/token') {
      if (!options.demo || req.method !== 'POST') return false;
      await handleDemoToken(options, req, res);
      return true;
    }
    if (path === '/examples' || path.startsWith('/examples/')) return serveExample(req, res, path);
    return serveFile(req, res, PUBLIC_DIR, path === '/' ? 'index.html' : path.slice(1));
  };

  return {
    routes,
    attach(server) {
      if (admin === undefined || feed !== undefined) return;
      feed = new AdminFeed(server);
      feed.start();
    },
    detach() {
      feed?.stop();
      feed = undefined;
    },
  };
}

/** /examples/<name>/<file> from examples/<name>/public/; the folder itself redirects to its slash form. */
function serveExample(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> | boolean {
  const [, , name, ...rest] = path.split('/');
  if (name === undefined || !EXAMPLE_NAME.test(name)) return false;
  if (rest.length === 0) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    res.writeHead(308, { Location: `/examples/${name}/` });
    res.end();
    return true;
  }
  const file = rest.join('/');
  return serveFile(req, res, join(EXAMPLES_DIR, name, 'public') + sep, file === '' ? 'index.html' : file);
}

async function serveFile(
  req: IncomingMessage,
  res: ServerResponse,
  root: string,
  relative: string,
  headers: Record<string, string> = {},
): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(relative);
  } catch {
    return false;
  }
  const file = normalize(join(root, decoded.endsWith('/') || decoded === '' ? `${decoded}index.html` : decoded));
  if (!file.startsWith(root) || decoded.includes('\0')) return false;
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    return false;
  }
  res.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
