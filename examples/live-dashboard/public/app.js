// Live dashboard over Server-Sent Events: a backend publishes one sample a second to
// `dashboard:hub`; this page draws the last two minutes. On load it asks the hub to replay the
// samples it keeps in the channel's history, so the charts start full instead of empty.
import { Herald } from '/herald-client.js';
import { formatNumber, lineChart } from '/lib/charts.js';
import { demoToken, showConnection, showProblem } from '/lib/demo.js';

const CHANNEL = 'dashboard:hub';
const POINTS = 120;
const $ = (id) => document.getElementById(id);

const series = { cpu: [], rss: [], heap: [], websocket: [], sse: [], poll: [], deliveries: [], publications: [] };
let last;

const client = new Herald(location.origin, {
  // SSE: the page only listens; a dashboard left open all day wants the lightest connection.
  transports: ['sse'],
  token: async () => (await demoToken('dashboard')).token,
});
showConnection(client, $('conn'));

function follow(since) {
  const sub = client.subscribe(CHANNEL, since ? { since } : {});
  sub.on('publication', (pub) => pub.event === 'sample' && add(pub));
  sub.on('state', (state) => {
    // Started from "now": replay the last POINTS samples the channel still holds, then go live.
    const p = sub.position;
    if (state === 'subscribed' && since === undefined && p?.offset > 0) {
      sub.unsubscribe();
      follow({ offset: Math.max(0, p.offset - POINTS), epoch: p.epoch });
    }
  });
  sub.on('error', (error) => showProblem(`Cannot follow ${CHANNEL}: ${error.message}`));
}

function add(pub) {
  const d = pub.data;
  const push = (key, value) => {
    series[key].push(Number(value) || 0);
    if (series[key].length > POINTS) series[key].shift();
  };
  push('cpu', d.cpuPercent);
  push('rss', d.rssMb);
  push('heap', d.heapMb);
  push('websocket', d.connections?.websocket);
  push('sse', d.connections?.sse);
  push('poll', d.connections?.poll);
  push('deliveries', d.deliveriesPerSecond);
  push('publications', d.publicationsPerSecond);
  last = { ...d, ts: pub.ts };
  schedule();
}

// A replay delivers many samples at once: draw once per frame, not once per sample.
let frame = 0;
function schedule() {
  if (frame === 0) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  if (!last) return;
  $('waiting').hidden = true;
  $('cpu').textContent = last.cpuPercent.toFixed(1);
  $('loop').textContent = `event loop p99 ${last.loopLagMs.toFixed(1)} ms`;
  $('rss').textContent = Math.round(last.rssMb);
  $('heap').textContent = `heap ${Math.round(last.heapMb)} MB`;
  const c = last.connections ?? {};
  const total = (c.websocket ?? 0) + (c.sse ?? 0) + (c.poll ?? 0) + (c.socketio ?? 0);
  $('connections').textContent = formatNumber(total);
  $('by-transport').textContent = `WebSocket ${c.websocket ?? 0} · SSE ${c.sse ?? 0} · poll ${c.poll ?? 0}`;
  $('deliveries').textContent = formatNumber(last.deliveriesPerSecond);
  $('publications').textContent = `${formatNumber(last.publicationsPerSecond)} publications/s`;
  lineChart($('chart-cpu'), [{ values: series.cpu, color: '#e8590c' }], { points: POINTS, minMax: 10 });
  lineChart(
    $('chart-memory'),
    [
      { values: series.rss, color: '#ae3ec9' },
      { values: series.heap, color: '#0c8599', fill: false },
    ],
    { points: POINTS, minMax: 10 },
  );
  lineChart(
    $('chart-connections'),
    [
      { values: series.websocket, color: '#4263eb', fill: false },
      { values: series.sse, color: '#0ca678', fill: false },
      { values: series.poll, color: '#f08c00', fill: false },
    ],
    { points: POINTS, integer: true },
  );
  lineChart(
    $('chart-throughput'),
    [
      { values: series.deliveries, color: '#0ca678' },
      { values: series.publications, color: '#4263eb', fill: false },
    ],
    { points: POINTS },
  );
  $('footnote').textContent =
    `Last sample ${new Date(last.ts).toLocaleTimeString()} · ${series.cpu.length} of ${POINTS} points`;
}

window.addEventListener('resize', schedule);
follow();
