#!/usr/bin/env node
// The shop's backend, reduced to one command: publishes an order's new status through Herald's
// HTTP API. A status must not be lost, also not while the hub restarts: the publish is retried
// until the hub acknowledges it (which it does only once the publication is stored), always with
// the same idempotency key, so a retry after a lost answer is applied once.
//
//   HERALD_API_KEY=... node examples/order-tracking/publish-status.mjs ORDER STATUS [NOTE]
//   HERALD_API_KEY=... node examples/order-tracking/publish-status.mjs ORDER --walk
//
// STATUS is one of: placed paid packed shipped out_for_delivery delivered. --walk publishes all of
// them, three seconds apart. HERALD_URL defaults to http://127.0.0.1:8080.
import { randomUUID } from 'node:crypto';

const STATUSES = ['placed', 'paid', 'packed', 'shipped', 'out_for_delivery', 'delivered'];
/** How long to keep trying before giving up (the hub may be restarting or briefly unreachable). */
const GIVE_UP_AFTER_MS = Number(process.env.PUBLISH_TIMEOUT_MS ?? 120_000);

const base = (process.env.HERALD_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const apiKey = process.env.HERALD_API_KEY;
const [order, status, ...noteWords] = process.argv.slice(2);

function usage(message) {
  console.error(
    `${message}\nusage: publish-status.mjs ORDER (STATUS [NOTE] | --walk)\nstatuses: ${STATUSES.join(' ')}`,
  );
  process.exit(2);
}

if (!apiKey) usage('HERALD_API_KEY is not set (the hub prints it at start).');
if (!order || !/^[A-Za-z0-9_-]{1,40}$/.test(order)) usage('ORDER must be 1 to 40 letters, digits, _ or -.');
if (status !== '--walk' && !STATUSES.includes(status)) usage(`unknown status "${status ?? ''}".`);

/** Resolves with the stored position once the hub acknowledged; retries what can succeed later. */
async function publish(data) {
  const body = JSON.stringify({ channel: `orders:${order}`, event: 'status', data, idempotencyKey: randomUUID() });
  const deadline = Date.now() + GIVE_UP_AFTER_MS;
  for (let attempt = 0; ; attempt++) {
    let problem;
    try {
      const response = await fetch(`${base}/api/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) return answer;
      // 503 (not ready, broker down), 429, 5xx: worth another try. Anything else will not change.
      if (response.status !== 429 && response.status < 500) {
        throw new Error(`refused: ${response.status} ${answer.error?.message ?? ''}`.trim());
      }
      problem = `${response.status} ${answer.error?.code ?? ''}`.trim();
    } catch (error) {
      if (error.message?.startsWith('refused:')) throw error;
      problem = error.cause?.code ?? error.name ?? 'network error';
    }
    if (Date.now() > deadline) throw new Error(`gave up after ${attempt + 1} attempts (last: ${problem})`);
    const delay = Math.min(5000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
    console.error(`hub not reachable (${problem}); retrying in ${Math.round(delay)} ms`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function send(next, note) {
  const { offset, epoch } = await publish(note ? { status: next, note } : { status: next });
  console.log(`orders:${order} -> ${next} (stored at offset ${offset}, epoch ${epoch})`);
}

try {
  if (status === '--walk') {
    for (const [i, next] of STATUSES.entries()) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 3000));
      await send(next);
    }
  } else {
    await send(status, noteWords.join(' ').trim());
  }
} catch (error) {
  console.error(`not published: ${error.message}`);
  process.exit(1);
}
