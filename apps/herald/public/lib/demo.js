// Shared by the sample apps: getting a development token and showing the connection state.

/**
 * Asks the hub's development endpoint for a token scoped to one sample app (docs/deployment.md,
 * "The demo token endpoint"). A real app gets its token from its own backend instead.
 */
export async function demoToken(app, user) {
  const response = await fetch('/demo/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(user ? { app, user } : { app }),
  });
  if (response.status === 404) {
    throw new Error(
      'This hub hands out no demo tokens. Start it without HERALD_JWT_SECRET (development) or with HERALD_DEMO=true.',
    );
  }
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error?.message ?? `The hub answered ${response.status}.`);
  return answer;
}

const LABELS = { websocket: 'WebSocket', sse: 'SSE', poll: 'long-polling' };

/** Keeps a `.conn` pill (data-state + text) in step with the client's state. */
export function showConnection(client, element) {
  const update = (s) => {
    element.dataset.state = s.state;
    if (s.state === 'connected') element.textContent = `Live · ${LABELS[s.transport] ?? s.transport}`;
    else if (s.state === 'connecting') element.textContent = 'Connecting…';
    else if (s.state === 'disconnected') element.textContent = `Reconnecting in ${Math.ceil(s.retryInMs / 1000)} s`;
    else element.textContent = s.error ? `Stopped: ${s.error.message}` : 'Closed';
  };
  update(client.state);
  client.on('state', update);
}

/** Shows a problem in the page's `.banner` element. */
export function showProblem(message) {
  const banner = document.querySelector('.banner');
  if (!banner) return;
  banner.textContent = message;
  banner.hidden = false;
}
