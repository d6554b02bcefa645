// Order tracking: the page follows `orders:<id>` and shows each status
// the moment the shop publishes it. Statuses must never be lost, also not across a hub restart:
// whenever the page cannot be sure it saw everything (first load, or a resume the hub could not
// serve), it reads the channel's retained stream from its start.
import { Herald } from '/herald-client.js';
import { demoToken, showConnection, showProblem } from '/lib/demo.js';

const STEPS = [
  { id: 'placed', label: 'Order placed', detail: 'We have your order and are checking it.' },
  { id: 'paid', label: 'Payment received', detail: 'Thank you! The warehouse has been told.' },
  { id: 'packed', label: 'Packed', detail: 'Your parcel is packed and waits for the carrier.' },
  { id: 'shipped', label: 'Shipped', detail: 'The carrier has your parcel.' },
  { id: 'out_for_delivery', label: 'Out for delivery', detail: 'It arrives today.' },
  { id: 'delivered', label: 'Delivered', detail: 'Enjoy!' },
];

const $ = (id) => document.getElementById(id);
const orderId = (new URLSearchParams(location.search).get('order') ?? '1042').replace(/[^A-Za-z0-9_-]/g, '') || '1042';
const channel = `orders:${orderId}`;

/** What the order went through: status -> {at, note}, and the latest update. */
const reached = new Map();
let latest;

const client = new Herald(location.origin, {
  // The SDK's default transport order: WebSocket, then SSE, then long-polling, whichever the
  // network lets through; the page does the same on each.
  // Asked again before the token expires and on every reconnect.
  token: async () => (await demoToken('orders')).token,
});
showConnection(client, $('conn'));

/**
 * Follows the channel. Without `since` it starts from now; with `{offset: 0, epoch}` the hub
 * replays every publication of that stream it still holds, then goes live without a gap.
 */
function follow(since) {
  const sub = client.subscribe(channel, since ? { since } : {});
  sub.on('publication', (pub) => apply(pub));
  sub.on('state', (state) => {
    // The first subscription only learns where the stream is: read what came before.
    if (state === 'subscribed' && since === undefined && sub.position?.offset > 0) {
      restart(sub, { offset: 0, epoch: sub.position.epoch });
    }
  });
  sub.on('recovered', ({ recovered, position }) => {
    if (recovered) return;
    // The hub could not replay what we missed: its stream was reset (a memory broker restarted)
    // or trimmed. Read the stream it has now from its start, so no status published meanwhile
    // is lost. Once is enough per stream: if even that is gone, say so.
    if (since?.offset === 0 && since.epoch === position.epoch) {
      notice('Older updates of this order have expired on the hub; showing the ones it still has.');
    } else if (position.offset > 0) {
      restart(sub, { offset: 0, epoch: position.epoch });
    }
  });
  sub.on('error', (error) => showProblem(`Cannot follow ${channel}: ${error.message}`));
  return sub;
}

function restart(sub, since) {
  sub.unsubscribe();
  follow(since);
}

function apply(pub) {
  const { status, note } = pub.data ?? {};
  if (!STEPS.some((s) => s.id === status)) return;
  reached.set(status, { at: pub.ts, note });
  if (latest === undefined || pub.ts >= latest.ts) latest = { status, ts: pub.ts, note };
  render();
}

// ---- rendering -----------------------------------------------------------------------------

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function render() {
  const index = latest ? STEPS.findIndex((s) => s.id === latest.status) : -1;
  const step = STEPS[index];
  $('current').dataset.status = step ? step.id : 'none';
  $('current-label').textContent = step ? step.label : 'Waiting for the first update…';
  $('current-detail').textContent = step
    ? (latest.note ?? step.detail)
    : 'Statuses appear here the moment the shop publishes them.';
  $('steps').replaceChildren(
    ...STEPS.map((s, i) => {
      const li = document.createElement('li');
      li.dataset.step = s.id;
      li.className = i < index ? 'done' : i === index ? 'now' : 'todo';
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = s.label;
      const when = document.createElement('span');
      when.className = 'when';
      const seen = reached.get(s.id);
      when.textContent = seen ? time.format(seen.at) : i < index ? 'done' : '';
      li.append(label, when);
      return li;
    }),
  );
  const next = STEPS[index + 1];
  $('advance').disabled = next === undefined;
  $('advance').textContent = next ? `Mark as “${next.label}”` : 'Delivered: nothing left to do';
  $('advance').dataset.next = next?.id ?? '';
  $('cmd').textContent =
    `HERALD_API_KEY=… node examples/order-tracking/publish-status.mjs ${orderId} ${next?.id ?? 'delivered'}`;
}

function notice(text) {
  $('notice').textContent = text;
  $('notice').hidden = false;
}

// ---- the operator panel: publishing from the page ---------------------------------------------

$('advance').addEventListener('click', async () => {
  const status = $('advance').dataset.next;
  if (!status) return;
  const note = $('note').value.trim();
  $('advance').disabled = true;
  $('operator-status').textContent = 'Publishing…';
  try {
    // With the client token (over SSE and long-polling through POST /api/publish); the answer
    // comes once the hub has stored it. The SDK retries with the same idempotency key if needed.
    const position = await client.publish(channel, note ? { status, note } : { status }, { event: 'status' });
    $('operator-status').textContent = `Stored at offset ${position.offset}.`;
    $('note').value = '';
  } catch (error) {
    $('operator-status').textContent = `Not published: ${error.message}`;
    render();
  }
});

$('reset').addEventListener('click', () => {
  const id = String(1000 + Math.floor(Math.random() * 9000));
  location.search = `?order=${id}`;
});

$('switch').addEventListener('submit', (event) => {
  event.preventDefault();
  const id = $('order-input').value.trim();
  if (id) location.search = `?order=${encodeURIComponent(id)}`;
});

$('order-title').textContent = `#${orderId}`;
$('channel-name').textContent = channel;
$('order-input').value = orderId;
render();
follow();
