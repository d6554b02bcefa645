/**
 * A minimal application backend for Herald webhooks: verifies each signature, drops repeats by
 * event id (delivery is at-least-once), prints the events. For trying webhooks locally:
 *   WEBHOOK_SECRET=whsec-local-0123456789 node --conditions=herald-source --import tsx \
 *     packages/integrations/scripts/webhook-receiver.ts [port]
 */
import { createServer } from 'node:http';
import { verifyWebhook, WebhookSignatureError } from '@herald/integrations/webhook-signature';

const secret = process.env.WEBHOOK_SECRET ?? 'whsec-local-0123456789';
const port = Number(process.argv[2] ?? 3000);
const seen = new Set<string>(); // use a store with expiry in a real backend

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    try {
      // The raw body, exactly as received: parse only after verifying.
      const event = verifyWebhook<{ id: string; type: string; ts: number; data: unknown }>(
        Buffer.concat(chunks),
        req.headers['herald-signature'],
        secret,
      );
      if (!seen.has(event.id)) {
        seen.add(event.id);
        process.stdout.write(`${new Date(event.ts).toISOString()} ${event.type} ${JSON.stringify(event.data)}\n`);
      }
      res.writeHead(204).end();
    } catch (error) {
      const code = error instanceof WebhookSignatureError ? error.code : 'bad_request';
      res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: code }));
    }
  });
}).listen(port, '127.0.0.1', () => process.stdout.write(`webhook receiver on http://127.0.0.1:${port}/\n`));
