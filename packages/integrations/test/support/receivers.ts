/**
 * Local stand-ins for the outside world, on loopback ports: the application backend that
 * receives webhooks, and a Web Push service that DECRYPTS what it receives (RFC 8188/8291:
 * ECDH, HKDF, AES-128-GCM with node:crypto) and verifies the VAPID JWT (RFC 8292) with the
 * public key. Nothing here uses web-push: the tests check its output independently.
 */
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify, type ECDH } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

// ---- webhooks ---------------------------------------------------------------------------------

export interface ReceivedWebhook {
  readonly headers: IncomingMessage['headers'];
  readonly raw: string;
  readonly event: any;
  readonly at: number;
  /** The status this receiver answered; 499 when the sender went away before the answer. */
  readonly status: number;
}

/** The application backend. `respond` picks the status per request (default 200). */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  respond: (event: any, attempt: number) => number | { status: number; headers?: Record<string, string> } = () => 200;
  /** While set, answers wait for it (to hold requests in flight). */
  gate: Promise<void> | undefined;
  /** Requests waiting at the gate whose sender is still connected. */
  held = 0;
  readonly #server = createServer((req, res) => void this.#handle(req, res));
  url = '';

  async start(): Promise<this> {
    this.url = `http://127.0.0.1:${await listen(this.#server)}/hooks`;
    return this;
  }

  close(): Promise<void> {
    return close(this.#server);
  }

  /** Events answered with 2xx, optionally of one type. */
  accepted(type?: string): any[] {
    return this.received
      .filter((r) => r.status < 300 && (type === undefined || r.event.type === type))
      .map((r) => r.event);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = (await body(req)).toString('utf8');
    const event = JSON.parse(raw);
    let senderGone = false;
    if (this.gate !== undefined) {
      this.held++;
      const gone = (): void => {
        if (!senderGone) this.held--;
        senderGone = true;
      };
      res.once('close', gone);
      await this.gate;
      res.off('close', gone);
      if (!senderGone) this.held--;
    }
    if (senderGone || req.socket.destroyed) {
      // The sender timed out or died while held: it never sees an answer.
      this.received.push({ headers: req.headers, raw, event, at: Date.now(), status: 499 });
      return;
    }
    const answer = this.respond(event, Number(req.headers['herald-attempt']));
    const { status, headers } = typeof answer === 'number' ? { status: answer, headers: {} } : answer;
    this.received.push({ headers: req.headers, raw, event, at: Date.now(), status });
    res.writeHead(status, headers);
    res.end();
  }
}

// ---- Web Push -----------------------------------------------------------------------------------

/** A browser's side of a subscription: the key pair and auth secret the push service never sees. */
export interface BrowserSubscription {
  readonly id: string;
  readonly ecdh: ECDH;
  readonly authSecret: Buffer;
  readonly json: { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } };
}

export interface ReceivedPush {
  readonly subscriptionId: string;
  readonly headers: IncomingMessage['headers'];
  /** The decrypted payload (undefined when decryption failed: see `error`). */
  readonly plaintext: Buffer | undefined;
  readonly error?: string;
  readonly vapid: { readonly valid: boolean; readonly claims: any; readonly key: string };
  readonly status: number;
}

export class PushService {
  readonly received: ReceivedPush[] = [];
  /** Status per subscription id (default 201). */
  readonly statuses = new Map<string, number>();
  readonly #subscriptions = new Map<string, BrowserSubscription>();
  readonly #server = createServer((req, res) => void this.#handle(req, res));
  /** Skip decryption (throughput measurements): store the body as received. */
  decrypt = true;
  base = '';

  async start(): Promise<this> {
    this.base = `http://127.0.0.1:${await listen(this.#server)}`;
    return this;
  }

  close(): Promise<void> {
    return close(this.#server);
  }

  /** What a browser does in pushManager.subscribe(): a P-256 key pair and a 16-byte auth secret. */
  subscribe(id: string): BrowserSubscription {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const authSecret = randomBytes(16);
    const sub: BrowserSubscription = {
      id,
      ecdh,
      authSecret,
      json: {
        endpoint: `${this.base}/push/${id}`,
        expirationTime: null,
        keys: {
          p256dh: ecdh.getPublicKey().toString('base64url'),
          auth: authSecret.toString('base64url'),
        },
      },
    };
    this.#subscriptions.set(id, sub);
    return sub;
  }

  for(id: string): ReceivedPush[] {
    return this.received.filter((r) => r.subscriptionId === id);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const data = await body(req);
    const id = (req.url ?? '').replace(/^\/push\//, '');
    const sub = this.#subscriptions.get(id);
    const status = this.statuses.get(id) ?? (sub === undefined ? 404 : 201);
    let plaintext: Buffer | undefined;
    let error: string | undefined;
    if (sub !== undefined && this.decrypt) {
      try {
        plaintext = decryptAes128gcm(data, sub);
      } catch (e) {
        error = String(e);
      }
    }
    const vapid = checkVapid(req.headers.authorization, `${this.base}`);
    this.received.push({
      subscriptionId: id,
      headers: req.headers,
      plaintext,
      ...(error ? { error } : {}),
      vapid,
      status,
    });
    res.writeHead(status);
    res.end();
  }
}

/**
 * RFC 8291 section 3.4 with RFC 8188's aes128gcm framing: header (salt 16, rs 4, idlen 1, keyid =
 * the sender's ephemeral public key), then one record: AES-128-GCM of plaintext || 0x02 || zero
 * padding, with the 16-byte tag at the end.
 */
export function decryptAes128gcm(body: Buffer, sub: BrowserSubscription): Buffer {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20] as number;
  const senderPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  if (idlen !== 65) throw new Error(`keyid is ${idlen} bytes, expected a 65-byte P-256 point`);
  if (record.length > rs) throw new Error('more than one record: not expected for a payload under 4 KiB');
  const ecdhSecret = sub.ecdh.computeSecret(senderPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0', 'latin1'), sub.ecdh.getPublicKey(), senderPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, sub.authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0', 'latin1'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0', 'latin1'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('the last record must end with the 0x02 delimiter');
  return padded.subarray(0, end);
}

/** `Authorization: vapid t=<JWT>, k=<public key>`: ES256 signature checked with k, and the claims returned. */
export function checkVapid(header: string | undefined, audience: string): ReceivedPush['vapid'] {
  const match = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header ?? '');
  if (match === null) return { valid: false, claims: undefined, key: '' };
  const [, jwt, k] = match as unknown as [string, string, string];
  const [head, payload, signature] = jwt.split('.') as [string, string, string];
  const point = Buffer.from(k, 'base64url');
  const key = createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33, 65).toString('base64url'),
    },
    format: 'jwk',
  });
  const signed = verify(
    'sha256',
    Buffer.from(`${head}.${payload}`),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'base64url'),
  );
  const header_ = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  const now = Date.now() / 1000;
  const valid =
    signed &&
    header_.alg === 'ES256' &&
    claims.aud === audience &&
    typeof claims.exp === 'number' &&
    claims.exp > now &&
    claims.exp <= now + 24 * 3600 + 60;
  return { valid, claims, key: k };
}
