#!/usr/bin/env node
// How many WebSocket connections one `herald serve` holds: opens connections (each sends
// `connect` with a token) until TARGET are open or the hub refuses; prints how many it holds.
// Run it in several processes (each has its own open-file limit) with distinct source addresses
// (127.0.0.x: one address has ~28,000 ephemeral ports). docs/scale-out.md, "Every core".
// Every process holds what it opened for HOLD seconds, so the hub's /metrics (herald_connections)
// can be read while all of them are open at once.
// Usage: node scripts/connection-capacity.mjs URL TOKEN TARGET SOURCE_ADDRESS HOLD_SECONDS
import WebSocket from 'ws';

const [url, token, targetText, localAddress, holdText = '20'] = process.argv.slice(2);
const target = Number(targetText);
let open = 0;
let failed = 0;
const sockets = [];
function one() {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { localAddress, perMessageDeflate: false });
    ws.on('error', () => undefined);
    ws.once('open', () => ws.send(JSON.stringify({ id: 1, method: 'connect', params: { token } })));
    ws.once('message', (data) => {
      const ok = !JSON.parse(String(data)).error;
      if (ok) {
        open++;
        sockets.push(ws);
      } else failed++;
      resolve(ok);
    });
    ws.once('close', () => resolve(false));
    // A handshake the hub never answers (it is out of file descriptors) counts as refused.
    setTimeout(() => {
      if (ws.readyState !== WebSocket.OPEN) {
        ws.terminate();
        resolve(false);
      }
    }, 5000).unref();
  });
}
let misses = 0;
while (open < target && misses < 400) {
  const results = await Promise.all(Array.from({ length: Math.min(200, target - open) }, one));
  const bad = results.filter((ok) => !ok).length;
  failed += bad;
  misses = bad === results.length ? misses + results.length : 0;
}
// Still open after a pause: the hub holds them (a refused or cut one would have closed).
await new Promise((r) => setTimeout(r, Number(holdText) * 1000));
const held = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
process.stdout.write(`${JSON.stringify({ localAddress, target, held, failed })}\n`);
for (const ws of sockets) ws.terminate();
process.exit(0);
