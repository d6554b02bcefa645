/**
 * Webhook signatures: HMAC-SHA256 over `${timestamp}.${body}`, sent as
 * `Herald-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]` (one v1 per active secret, so a
 * secret can be rotated without a gap). Receivers verify with `verifyWebhook`, which also refuses
 * timestamps outside a tolerance window: a captured request cannot be replayed later.
 *
 * This module depends on node:crypto only; receivers import it alone as
 * `@herald/integrations/webhook-signature`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'Herald-Signature';
/** Default window, in seconds, around the receiver's clock in which a signature is accepted. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export type WebhookSignatureErrorCode =
  'missing_signature' | 'malformed_signature' | 'timestamp_out_of_tolerance' | 'signature_mismatch' | 'malformed_body';

export class WebhookSignatureError extends Error {
  readonly code: WebhookSignatureErrorCode;
  constructor(code: WebhookSignatureErrorCode, message: string) {
    super(message);
    this.name = 'WebhookSignatureError';
    this.code = code;
  }
}

function hmac(secret: string, timestamp: number, body: string | Uint8Array): Buffer {
  const mac = createHmac('sha256', secret);
  mac.update(`${timestamp}.`);
  mac.update(body);
  return mac.digest();
}

/** The `Herald-Signature` header value for `body` signed at `timestamp` (unix seconds). */
export function signWebhook(
  body: string | Uint8Array,
  secrets: string | readonly string[],
  timestamp = Math.floor(Date.now() / 1000),
): string {
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  return [`t=${timestamp}`, ...list.map((s) => `v1=${hmac(s, timestamp, body).toString('hex')}`)].join(',');
}

export interface VerifyOptions {
  /** Seconds the timestamp may differ from `now` (either way). Default 300. */
  readonly toleranceSeconds?: number;
  /** The receiver's clock, epoch ms. Default Date.now(). */
  readonly now?: number;
}

/**
 * Checks a webhook request and returns its parsed event. `body` must be the raw request body,
 * exactly as received (parse it only after this). Accepts if any `v1` matches any of `secrets`.
 * Throws a WebhookSignatureError otherwise. Deduplicate on the event's `id`: delivery is
 * at-least-once, and a retry carries the same id.
 */
export function verifyWebhook<T = unknown>(
  body: string | Uint8Array,
  header: string | readonly string[] | undefined | null,
  secrets: string | readonly string[],
  options: VerifyOptions = {},
): T {
  const value = Array.isArray(header) ? header[0] : header;
  if (typeof value !== 'string' || value.length === 0) {
    throw new WebhookSignatureError('missing_signature', `the ${SIGNATURE_HEADER} header is missing`);
  }
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (name === 't' && /^\d{1,12}$/.test(v)) timestamp = Number(v);
    else if (name === 'v1' && /^[0-9a-f]{64}$/.test(v)) signatures.push(Buffer.from(v, 'hex'));
  }
  if (timestamp === undefined || signatures.length === 0) {
    throw new WebhookSignatureError('malformed_signature', `the ${SIGNATURE_HEADER} header is not t=...,v1=...`);
  }
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(now - timestamp) > tolerance) {
    throw new WebhookSignatureError(
      'timestamp_out_of_tolerance',
      `the signature is ${now - timestamp} s old, outside the ${tolerance} s tolerance (a replay, or clocks apart)`,
    );
  }
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  const matched = list.some((secret) => {
    const expected = hmac(secret, timestamp, body);
    return signatures.some((s) => timingSafeEqual(s, expected));
  });
  if (!matched) throw new WebhookSignatureError('signature_mismatch', 'no signature matches the secret');
  try {
    return JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8')) as T;
  } catch {
    throw new WebhookSignatureError('malformed_body', 'the body is not JSON');
  }
}
