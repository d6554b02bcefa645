/**
 * `Herald-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, the header of the
 * webhooks (@herald/integrations), so a backend checks hook requests with the same
 * `verifyWebhook` (`@herald/integrations/webhook-signature`).
 */
import { createHmac } from 'node:crypto';

export const HOOK_SIGNATURE_HEADER = 'herald-signature';

export function signHookBody(body: string, secret: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}
