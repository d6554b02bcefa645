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
      'This hub hands out no demo tokens: they are on only for `npm start` without HERALD_API_KEY, HERALD_JWT_SECRET and HOST, or with HERALD_DEMO=true (development only).',
    );
  }
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error?.message ?? `The hub answered ${response.status}.`);
  return answer;
}

const LABELS = { websocket: 'WebSocket', sse: 'SSE', poll: 'long-polling' };

/**
 * Keeps a `.conn` pill (data-state + text) in step with the client's state, and says why when the
 * page cannot connect: a token that cannot be had (the demo endpoint is off, the backend is down)
 * would otherwise look like an endless "Reconnecting in N s".
 */
export function showConnection(client, element) {
  let shown = false;
  const update = (s) => {
    element.dataset.state = s.state;
    element.title = s.error ? s.error.message : '';
    if (s.state === 'connected') element.textContent = `Live · ${LABELS[s.transport] ?? s.transport}`;
    else if (s.state === 'connecting') element.textContent = 'Connecting…';
    else if (s.state === 'disconnected') element.textContent = `Reconnecting in ${Math.ceil(s.retryInMs / 1000)} s`;
    else element.textContent = s.error ? `Stopped: ${s.error.message}` : 'Closed';
    const reason = problemOf(s.error);
    if (reason !== undefined) {
      showProblem(reason);
      shown = true;
    } else if (s.state === 'connected' && shown) {
      hideProblem();
      shown = false;
    }
  };
  update(client.state);
  client.on('state', update);
}

/**
 * What the reader should be told about a connection error: the page's own token source failing
 * (no demo tokens on this hub), or a refusal; undefined for errors a retry may cure. Shared with
 * the React dashboard (examples/live-dashboard).
 */
export function problemOf(error) {
  if (!error) return undefined;
  if (error.code === 'token_failed') return error.cause?.message ?? error.message;
  if (error.code === 'unauthorized' || error.code === 'forbidden') return `The hub refused the page: ${error.message}`;
  return undefined;
}

/** Shows a problem in the page's `.banner` element. */
export function showProblem(message) {
  const banner = document.querySelector('.banner');
  if (!banner) return;
  banner.textContent = message;
  banner.hidden = false;
}

function hideProblem() {
  const banner = document.querySelector('.banner');
  if (banner) banner.hidden = true;
}
