// The admin page. Every node of the hub publishes a snapshot of itself once a second on the
// internal channel `_herald:stats`; this page follows that channel over the hub's own SSE with a
// native EventSource, merges the nodes and draws the result. Signing in exchanges the API key
// (in a POST body, never a URL) for an HttpOnly session cookie and a short-lived stream token
// that can read that one channel.
import { formatNumber, lineChart, sparkline } from '/lib/charts.js';

const TRANSPORTS = ['websocket', 'sse', 'poll', 'socketio'];
const TRANSPORT_LABELS = { websocket: 'WebSocket', sse: 'SSE', poll: 'Long-poll', socketio: 'Socket.IO' };
const COLORS = { websocket: '#4263eb', sse: '#0ca678', poll: '#f08c00', socketio: '#ae3ec9' };
const HISTORY = 120; // seconds kept for the charts
const STALE_MS = 5000; // a node silent this long is shown as stale
const FORGET_MS = 60_000; // and dropped after this long
const MAX_CHANNEL_ROWS = 25;

const $ = (id) => document.getElementById(id);

const state = {
  stream: undefined,
  channel: '_herald:stats',
  nodes: new Map(), // node id -> { snapshot, receivedAt }
  history: { pub: [], del: [], slow: [], auth: [], ...Object.fromEntries(TRANSPORTS.map((t) => [t, []])) },
  usedTransports: new Set(['websocket', 'sse', 'poll']),
  lastMessageAt: 0,
  ticker: undefined,
  renewTimer: undefined,
  filter: '',
};

// ---- session -------------------------------------------------------------------------------

async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body ?? {}),
    credentials: 'same-origin',
  });
  const answer = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, answer };
}

function showLogin(message) {
  stopStream();
  $('dashboard').hidden = true;
  $('session-controls').hidden = true;
  $('login-view').hidden = false;
  const error = $('login-error');
  error.hidden = !message;
  error.textContent = message ?? '';
  $('api-key').focus();
}

function showDashboard() {
  $('login-view').hidden = true;
  $('dashboard').hidden = false;
  $('session-controls').hidden = false;
}

async function login(event) {
  event.preventDefault();
  const input = $('api-key');
  const button = $('login-submit');
  button.disabled = true;
  try {
    const { ok, answer } = await post('/admin/session', { apiKey: input.value });
    if (!ok) return showLogin(answer.error?.message ?? 'Sign-in failed.');
    input.value = '';
    start(answer);
  } catch {
    showLogin('The hub did not answer. Is it running?');
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  await post('/admin/logout').catch(() => undefined);
  showLogin();
}

/** Asks for a fresh stream token with the session cookie; shows the login form when there is none. */
async function renew() {
  try {
    const { ok, status, answer } = await post('/admin/token');
    if (ok) return start(answer);
    if (status === 401) return showLogin(state.stream ? 'Your admin session expired. Sign in again.' : undefined);
    if ($('dashboard').hidden) return showLogin(answer.error?.message ?? `The hub answered ${status}.`);
    setStatus('down', answer.error?.message ?? `Hub answered ${status}`);
  } catch {
    if ($('dashboard').hidden) return showLogin('The hub did not answer. Is it running?');
    setStatus('down', 'Hub unreachable');
  }
  retrySoon();
}

function retrySoon() {
  clearTimeout(state.renewTimer);
  state.renewTimer = setTimeout(renew, 3000);
}

// ---- the stream ----------------------------------------------------------------------------

function start({ token, expiresIn, channel }) {
  showDashboard();
  stopStream();
  state.channel = channel;
  const url = `/sse?channel=${encodeURIComponent(channel)}&token=${encodeURIComponent(token)}`;
  const stream = new EventSource(url);
  state.stream = stream;
  setStatus('connecting', 'Connecting');
  stream.addEventListener('herald.connected', () => setStatus('connecting', 'Waiting for nodes'));
  stream.addEventListener('node', (event) => {
    const publication = JSON.parse(event.data);
    onSnapshot(publication.data);
  });
  stream.addEventListener('herald.disconnect', (event) => {
    const info = JSON.parse(event.data);
    // 4003: the stream token expired; anything not meant to be retried as is: get a new token.
    if (info.code === 4003 || !info.reconnect) {
      stream.close();
      renew();
    } else {
      setStatus('connecting', 'Reconnecting');
    }
  });
  stream.onerror = () => {
    if (stream !== state.stream) return;
    if (stream.readyState === EventSource.CLOSED) {
      // Refused (for example 401 after the token expired while we were away): start over.
      setStatus('down', 'Disconnected');
      retrySoon();
    } else {
      setStatus('connecting', 'Reconnecting');
    }
  };
  // Swap to a fresh token a minute before this one runs out, so the page never goes dark.
  clearTimeout(state.renewTimer);
  state.renewTimer = setTimeout(renew, Math.max(10, expiresIn - 60) * 1000);
  if (state.ticker === undefined) state.ticker = setInterval(tick, 1000);
}

function stopStream() {
  state.stream?.close();
  state.stream = undefined;
  clearTimeout(state.renewTimer);
}

function setStatus(kind, text) {
  $('status').dataset.state = kind;
  $('status-text').textContent = text;
}

function onSnapshot(snapshot) {
  if (typeof snapshot?.node?.id !== 'string') return;
  const first = state.nodes.size === 0;
  state.nodes.set(snapshot.node.id, { snapshot, receivedAt: Date.now() });
  state.lastMessageAt = Date.now();
  if (first) tick(false);
}

// ---- aggregation ---------------------------------------------------------------------------

function freshNodes(now) {
  const fresh = [];
  for (const [id, entry] of state.nodes) {
    const age = now - entry.receivedAt;
    if (age > FORGET_MS) state.nodes.delete(id);
    else if (age <= STALE_MS) fresh.push(entry.snapshot);
  }
  return fresh;
}

function sum(nodes, read) {
  return nodes.reduce((total, node) => total + (read(node) ?? 0), 0);
}

/** One point per second for the charts, and a redraw. */
function tick(record = true) {
  const now = Date.now();
  const nodes = freshNodes(now);
  const live = now - state.lastMessageAt < 3000;
  if (state.stream && state.nodes.size > 0) {
    setStatus(live ? 'live' : 'connecting', live ? `Live · ${plural(nodes.length, 'node')}` : 'Waiting for data');
  }
  const viewers = sum(nodes, (n) => TRANSPORTS.reduce((t, k) => t + (n.viewers?.[k] ?? 0), 0));
  const figures = {
    connections: Object.fromEntries(
      TRANSPORTS.map((t) => [t, sum(nodes, (n) => (n.connections?.[t] ?? 0) - (n.viewers?.[t] ?? 0))]),
    ),
    viewers,
    pub: sum(nodes, (n) => n.rates?.publications),
    // Each node sends every viewer one snapshot per node each second: leave those out.
    del: Math.max(
      0,
      sum(nodes, (n) => n.rates?.deliveries) -
        sum(nodes, (n) => TRANSPORTS.reduce((t, k) => t + (n.viewers?.[k] ?? 0), 0)) * nodes.length,
    ),
    slow: sum(nodes, (n) => n.rates?.slowConsumerDisconnects),
    auth: sum(nodes, (n) => n.rates?.authFailures),
  };
  if (record && nodes.length > 0) {
    for (const key of ['pub', 'del', 'slow', 'auth']) push(state.history[key], figures[key]);
    for (const t of TRANSPORTS) {
      push(state.history[t], figures.connections[t]);
      if (figures.connections[t] > 0) state.usedTransports.add(t);
    }
  }
  render(nodes, figures, now);
}

function push(series, value) {
  series.push(value);
  if (series.length > HISTORY) series.shift();
}

// ---- rendering -----------------------------------------------------------------------------

function render(nodes, figures, now) {
  const total = TRANSPORTS.reduce((t, k) => t + figures.connections[k], 0);
  $('connections-total').textContent = nodes.length ? formatNumber(total) : '–';
  const chips = $('connections-by-transport');
  chips.replaceChildren(
    ...TRANSPORTS.filter((t) => t !== 'socketio' || figures.connections.socketio > 0).map((t) => {
      const li = document.createElement('li');
      li.dataset.transport = t;
      const dot = document.createElement('i');
      dot.className = `dot t-${t}`;
      const label = document.createElement('span');
      label.textContent = `${TRANSPORT_LABELS[t]} `;
      const count = document.createElement('b');
      count.textContent = formatNumber(figures.connections[t]);
      label.append(count);
      li.append(dot, label);
      return li;
    }),
  );
  $('viewers-note').textContent = figures.viewers > 0 ? `+ ${plural(figures.viewers, 'admin viewer')} not counted` : '';

  const h = state.history;
  $('pub-rate').textContent = nodes.length ? formatNumber(figures.pub) : '–';
  $('del-rate').textContent = nodes.length ? formatNumber(figures.del) : '–';
  sparkline($('pub-spark'), h.pub, COLORS.websocket);
  sparkline($('del-spark'), h.del, COLORS.sse);
  $('pub-total').textContent = `${formatNumber(sum(nodes, (n) => n.totals?.publications))} since start`;
  $('del-total').textContent = `${formatNumber(
    sum(nodes, (n) => TRANSPORTS.reduce((t, k) => t + (n.totals?.deliveries?.[k] ?? 0), 0)),
  )} since start (all transports)`;

  const slowTotal = sum(nodes, (n) => n.totals?.slowConsumerDisconnects);
  const slowRecent = h.slow.slice(-60).reduce((a, b) => a + b, 0);
  $('slow-total').textContent = nodes.length ? formatNumber(slowTotal) : '–';
  $('card-slow').classList.toggle('alert', slowRecent > 0);
  sparkline($('slow-spark'), h.slow, '#d9480f');
  $('slow-recent').textContent = `${formatNumber(Math.round(slowRecent))} in the last minute`;

  const authTotal = sum(nodes, (n) => n.totals?.authFailures);
  const authRecent = h.auth.slice(-60).reduce((a, b) => a + b, 0);
  $('auth-total').textContent = nodes.length ? formatNumber(authTotal) : '–';
  $('card-auth').classList.toggle('alert', authRecent > 0);
  sparkline($('auth-spark'), h.auth, '#c92a2a');
  $('auth-recent').textContent = `${formatNumber(Math.round(authRecent))} in the last minute`;

  renderBroker(nodes);
  lineChart(
    $('throughput-chart'),
    [
      { values: h.pub, color: COLORS.websocket },
      { values: h.del, color: COLORS.sse },
    ],
    { points: HISTORY, label: 'publications and deliveries per second' },
  );
  const shown = TRANSPORTS.filter((t) => state.usedTransports.has(t));
  lineChart(
    $('connections-chart'),
    shown.map((t) => ({ values: h[t], color: COLORS[t], fill: false })),
    { points: HISTORY, label: 'connections by transport', integer: true },
  );
  $('connections-legend').replaceChildren(
    ...shown.map((t) => {
      const li = document.createElement('li');
      const swatch = document.createElement('i');
      swatch.className = `swatch t-${t}`;
      li.append(swatch, TRANSPORT_LABELS[t]);
      return li;
    }),
  );
  renderChannels(nodes);
  renderNodes(now);
}

function renderBroker(nodes) {
  const names = [...new Set(nodes.map((n) => n.broker?.name).filter(Boolean))];
  $('broker-name').textContent = names.length ? names.join(', ') : '–';
  const ready = nodes.filter((n) => n.broker?.ready).length;
  const pill = $('broker-state');
  if (nodes.length === 0) {
    pill.dataset.state = 'unknown';
    pill.textContent = 'no data';
  } else if (ready === nodes.length) {
    pill.dataset.state = 'up';
    pill.textContent = 'connected';
  } else if (ready === 0) {
    pill.dataset.state = 'down';
    pill.textContent = 'disconnected';
  } else {
    pill.dataset.state = 'partial';
    pill.textContent = `${ready} of ${nodes.length} connected`;
  }
  $('nodes-note').textContent = nodes.length ? `${plural(nodes.length, 'node')} reporting` : '';
}

function renderChannels(nodes) {
  // Each node counts its own subscribers; a channel's total is the sum over the nodes.
  const totals = new Map();
  let anyTruncated = false;
  for (const node of nodes) {
    for (const [channel, count] of node.channels?.top ?? []) totals.set(channel, (totals.get(channel) ?? 0) + count);
    if ((node.channels?.count ?? 0) > (node.channels?.top?.length ?? 0)) anyTruncated = true;
  }
  const filter = state.filter.toLowerCase();
  const rows = [...totals]
    .filter(([channel]) => channel.toLowerCase().includes(filter))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const max = Math.max(1, ...rows.map((r) => r[1]));
  $('channels-count').textContent = totals.size ? `· ${formatNumber(totals.size)}${anyTruncated ? '+' : ''}` : '';
  const body = $('channels-table').tBodies[0];
  body.replaceChildren(
    ...rows.slice(0, MAX_CHANNEL_ROWS).map(([channel, count]) => {
      const tr = document.createElement('tr');
      const name = document.createElement('td');
      name.className = 'channel';
      name.textContent = channel;
      const num = document.createElement('td');
      num.className = 'num';
      num.textContent = formatNumber(count);
      const barCell = document.createElement('td');
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = `${Math.max(2, (count / max) * 100)}%`;
      bar.append(fill);
      barCell.append(bar);
      tr.append(name, num, barCell);
      return tr;
    }),
  );
  $('channels-empty').hidden = rows.length > 0;
  $('channels-empty').textContent =
    totals.size > 0 ? 'No channel matches the filter.' : 'No channel has subscribers right now.';
  $('channels-table').hidden = rows.length === 0;
}

function renderNodes(now) {
  const entries = [...state.nodes.values()].sort((a, b) =>
    a.snapshot.node.address < b.snapshot.node.address ? -1 : 1,
  );
  $('nodes-count').textContent = entries.length ? `· ${entries.length}` : '';
  $('nodes').replaceChildren(
    ...entries.map(({ snapshot: n, receivedAt }) => {
      const stale = now - receivedAt > STALE_MS;
      const card = document.createElement('div');
      card.className = `node${stale ? ' stale' : ''}`;
      card.dataset.node = n.node.id;
      const head = document.createElement('div');
      head.className = 'node-head';
      const name = document.createElement('span');
      name.className = 'node-name';
      name.textContent = n.node.address || n.node.host;
      const small = document.createElement('small');
      small.textContent = `${n.node.host} · pid ${n.node.pid}`;
      name.append(small);
      const pill = document.createElement('span');
      pill.className = 'pill';
      const ok = !stale && n.ready && n.broker?.ready;
      pill.dataset.state = stale ? 'unknown' : ok ? 'up' : 'down';
      pill.textContent = stale ? `silent ${Math.round((now - receivedAt) / 1000)} s` : ok ? 'ready' : 'not ready';
      head.append(name, pill);
      const connections = TRANSPORTS.reduce((t, k) => t + (n.connections?.[k] ?? 0) - (n.viewers?.[k] ?? 0), 0);
      const facts = [
        ['Connections', formatNumber(connections)],
        ['Channels', formatNumber(n.channels?.count ?? 0)],
        ['CPU', `${(n.process?.cpuPercent ?? 0).toFixed(1)}%`],
        ['Memory', bytes(n.process?.rssBytes ?? 0)],
        ['Pub/s', formatNumber(n.rates?.publications ?? 0)],
        ['Loop delay', `${(n.process?.loopDelayMs ?? 0).toFixed(1)} ms`],
        ['Broker', n.broker?.name ?? '–'],
        ['Uptime', duration(n.process?.uptime ?? 0)],
      ];
      const dl = document.createElement('dl');
      for (const [label, value] of facts) {
        const wrap = document.createElement('div');
        const dt = document.createElement('dt');
        dt.textContent = label;
        const dd = document.createElement('dd');
        dd.textContent = value;
        wrap.append(dt, dd);
        dl.append(wrap);
      }
      card.append(head, dl);
      return card;
    }),
  );
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function bytes(n) {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GB`;
  if (n >= 1024 ** 2) return `${Math.round(n / 1024 ** 2)} MB`;
  return `${Math.round(n / 1024)} KB`;
}

function duration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3600)} h`;
}

// ---- start ---------------------------------------------------------------------------------

$('login-form').addEventListener('submit', login);
$('logout').addEventListener('click', logout);
$('channel-filter').addEventListener('input', (event) => {
  state.filter = event.target.value;
  tick(false);
});
window.addEventListener('resize', () => tick(false));
renew();
