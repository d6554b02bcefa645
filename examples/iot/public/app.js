// IoT sensors over a plain EventSource: no SDK, no token. The sensors' channels `sensors:<id>` are
// anonymous (herald.yaml), fed by the MQTT bridge. A native EventSource resumes by itself after a
// drop, sending Last-Event-ID, so no reading is lost or shown twice.
const $ = (id) => document.getElementById(id);

// Which sensors: ?sensors=s1,s2 (default s1..s3).
const sensors = (new URLSearchParams(location.search).get('sensors') || 's1,s2,s3')
  .split(',')
  .map((id) => id.trim())
  .filter((id) => /^[A-Za-z0-9_-]{1,64}$/.test(id));
const rows = new Map();
for (const id of sensors) {
  const tr = document.createElement('tr');
  const cells = ['name', 'num', 'num', 'spark', 'num'].map((kind) => {
    const td = document.createElement('td');
    td.className = kind;
    return td;
  });
  cells[0].textContent = id;
  cells[1].textContent = cells[2].textContent = '–';
  cells[4].textContent = '0';
  cells[3].innerHTML = '<svg width="160" height="24" aria-hidden="true"></svg>';
  tr.append(...cells);
  $('rows').append(tr);
  rows.set(id, { cells, history: [], count: 0 });
}

const query = sensors.map((id) => `channel=${encodeURIComponent(`sensors:${id}`)}`).join('&');
const source = new EventSource(`/sse?${query}`);
const conn = $('conn');
let connected = false;

source.addEventListener('herald.connected', () => {
  connected = true;
  conn.dataset.state = 'connected';
  conn.textContent = 'Live · SSE';
});

source.onerror = async () => {
  conn.dataset.state = 'disconnected';
  conn.textContent = 'Reconnecting…';
  if (connected || source.readyState !== EventSource.CLOSED) return;
  // Refused before the stream (an EventSource hides the status): ask the hub why, and say so.
  source.close();
  conn.dataset.state = 'closed';
  conn.textContent = 'Stopped';
  const answer = await fetch(`/sse?${query}`).catch(() => undefined);
  const reason = answer && !answer.ok ? (await answer.json().catch(() => ({}))).error?.message : undefined;
  showProblem(
    `The hub refused the sensor channels${reason ? ` (${reason})` : ''}. Start it with --config examples/iot/herald.yaml, which makes sensors:* anonymous.`,
  );
};

// The bridge names the event "reading", so it arrives as that SSE event (not onmessage).
source.addEventListener('reading', (e) => {
  const pub = JSON.parse(e.data);
  const row = rows.get(pub.channel.slice('sensors:'.length));
  if (!row) return;
  $('setup').hidden = true;
  const r = pub.data;
  row.count++;
  row.history.push(r.temperature);
  if (row.history.length > 60) row.history.shift();
  row.cells[1].textContent = r.temperature.toFixed(2);
  row.cells[2].textContent = r.humidity.toFixed(1);
  row.cells[4].textContent = String(row.count);
  const min = Math.min(...row.history);
  const span = Math.max(...row.history) - min || 1;
  const points = row.history.map((v, i) => `${(i * 160) / 59},${22 - ((v - min) / span) * 20}`).join(' ');
  row.cells[3].firstElementChild.innerHTML = `<polyline fill="none" stroke="#2b8a3e" stroke-width="1.5" points="${points}"/>`;
});

function showProblem(message) {
  const banner = document.querySelector('.banner');
  banner.textContent = message;
  banner.hidden = false;
}
