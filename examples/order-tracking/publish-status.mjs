#!/usr/bin/env node
// The shop's backend, reduced to one command: publishes an order's new status through Herald's
// HTTP API with @herald/server-client. A status must not be lost, also not while the hub restarts:
// the publish is retried until the hub acknowledges it (which it does only once the publication
// is stored), always with the same idempotency key, so a retry after a lost answer is applied once.
//
//   HERALD_API_KEY=... node examples/order-tracking/publish-status.mjs ORDER STATUS [NOTE]
//   HERALD_API_KEY=... node examples/order-tracking/publish-status.mjs ORDER --walk
//
// STATUS is one of: placed paid packed shipped out_for_delivery delivered. --walk publishes all of
// them, three seconds apart. HERALD_URL defaults to http://127.0.0.1:8080.
import { HeraldServerClient } from '@herald/server-client';

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

// Retries go on for GIVE_UP_AFTER_MS, with backoff up to 5 s; only what can succeed later is
// retried (no answer, 429, 502/503/504), never a refusal such as a bad key.
const herald = new HeraldServerClient({
  url: base,
  apiKey,
  timeoutMs: 10_000,
  retry: { attempts: Number.POSITIVE_INFINITY, minDelayMs: 250, maxDelayMs: 5000, totalMs: GIVE_UP_AFTER_MS },
  onRetry: ({ error, delayMs }) => {
    const problem = error.status === undefined ? error.code : `${error.status} ${error.code}`;
    console.error(`hub not reachable (${problem}); retrying in ${delayMs} ms`);
  },
});

function publish(data) {
  return herald.publish({ channel: `orders:${order}`, event: 'status', data });
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
  const attempts = error.attempts > 1 ? ` after ${error.attempts} attempts` : '';
  console.error(`not published${attempts}: ${error.code ?? ''} ${error.message}`.trim());
  process.exit(1);
}
