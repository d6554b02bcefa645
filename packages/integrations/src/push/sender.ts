/**
 * One Web Push request: payload encryption (RFC 8291, aes128gcm) and the VAPID header (RFC 8292)
 * come from the `web-push` library's `generateRequestDetails`; the request itself is made here
 * with fetch, so the timeout is ours, nothing is printed, and tests can use a plain-HTTP endpoint.
 */
import webpush from 'web-push';
import type { Urgency } from './section.js';
import type { PushSubscriptionRecord, VapidKeys } from './store.js';

export interface VapidDetails extends VapidKeys {
  /** `mailto:` or `https:` contact the push service may use (RFC 8292 `sub`). */
  readonly subject: string;
}

export interface PushOptions {
  readonly ttlSeconds: number;
  readonly urgency: Urgency;
  readonly topic?: string;
}

/**
 * What the push service said: `sent` (2xx), `gone` (404/410: the subscription is dead, remove it),
 * `retry` (429, 5xx, network), `failed` (any other answer: 400, 403 VAPID mismatch, 413).
 */
export type PushOutcome =
  | { readonly result: 'sent'; readonly status: number }
  | { readonly result: 'gone'; readonly status: number }
  | { readonly result: 'retry'; readonly status?: number; readonly error?: string; readonly retryAfterMs?: number }
  | { readonly result: 'failed'; readonly status: number };

/** A VAPID JWT lives 12 h (RFC 8292 allows up to 24) and is renewed when less than 1 h is left. */
const VAPID_LIFETIME_S = 12 * 3600;
const VAPID_RENEW_S = 3600;

export class WebPushSender {
  readonly #vapid: VapidDetails;
  readonly #timeoutMs: number;
  /**
   * Authorization header per push-service origin. Signing a JWT costs most of the CPU of a push
   * (an ES256 signature against one ECDH + AES-GCM); push services accept one JWT until its `exp`.
   */
  readonly #authorization = new Map<string, { header: string; renewAt: number }>();

  constructor(vapid: VapidDetails, timeoutMs: number) {
    this.#vapid = vapid;
    this.#timeoutMs = timeoutMs;
  }

  get publicKey(): string {
    return this.#vapid.publicKey;
  }

  async send(subscription: PushSubscriptionRecord, payload: string, options: PushOptions): Promise<PushOutcome> {
    const details = webpush.generateRequestDetails(
      { endpoint: subscription.endpoint, keys: { p256dh: subscription.keys.p256dh, auth: subscription.keys.auth } },
      payload,
      {
        TTL: options.ttlSeconds,
        urgency: options.urgency,
        contentEncoding: 'aes128gcm',
        ...(options.topic === undefined ? {} : { topic: options.topic }),
      },
    );
    let response: Response;
    try {
      const headers = {
        ...(details.headers as Record<string, string>),
        Authorization: this.#vapidHeader(details.endpoint),
      };
      response = await fetch(details.endpoint, {
        method: details.method,
        headers,
        body: new Uint8Array(details.body as Buffer),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      return { result: 'retry', error: (error as Error).name === 'TimeoutError' ? 'timed out' : String(error) };
    }
    await response.body?.cancel().catch(() => undefined);
    const status = response.status;
    if (status >= 200 && status < 300) return { result: 'sent', status };
    if (status === 404 || status === 410) return { result: 'gone', status };
    if (status === 429 || status >= 500) {
      const after = Number(response.headers.get('retry-after'));
      return { result: 'retry', status, ...(after > 0 ? { retryAfterMs: after * 1000 } : {}) };
    }
    return { result: 'failed', status };
  }

  #vapidHeader(endpoint: string): string {
    const audience = new URL(endpoint).origin;
    const now = Math.floor(Date.now() / 1000);
    const cached = this.#authorization.get(audience);
    if (cached !== undefined && cached.renewAt > now) return cached.header;
    const { subject, publicKey, privateKey } = this.#vapid;
    const header = webpush.getVapidHeaders(
      audience,
      subject,
      publicKey,
      privateKey,
      'aes128gcm',
      now + VAPID_LIFETIME_S,
    ).Authorization;
    if (this.#authorization.size >= 1000) this.#authorization.clear(); // a handful of push services in practice
    this.#authorization.set(audience, { header, renewAt: now + VAPID_LIFETIME_S - VAPID_RENEW_S });
    return header;
  }
}

export function generateVapidKeys(): VapidKeys {
  const { publicKey, privateKey } = webpush.generateVAPIDKeys();
  return { publicKey, privateKey };
}
