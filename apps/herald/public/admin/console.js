// The operator console of the admin page: one channel's subscribers, presence, history and live
// events, a test publish, and the connections of one user, with disconnect and unsubscribe
// actions. Every read and action is the server API (docs/protocol-extensions.md) called through
// `/admin/api/`, which this node forwards with the API key once it has checked the admin session
// cookie: the page never holds the key. The live log reads the channel over SSE with a token for
// that channel alone, from `/admin/log-token`.

const $ = (id) => document.getElementById(id);

const state = { channel: undefined, user: undefined, log: undefined };

async function call(method, path, body) {
  const response = await fetch(`/admin/api${path}`, {
    method,
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error?.message ?? `the hub answered ${response.status}`);
  return answer;
}

/** Which part of the page the error shown came from: a part's success clears only its own error. */
let errorFrom;

/**
 * Shows `error` (from `from`: 'channel', 'user', 'publish' or 'action'), or clears the error shown if
 * it came from `from`: the user view refreshing every 3 s must not clear the channel view's error.
 */
function showError(error, from) {
  if (error === undefined && errorFrom !== from) return;
  errorFrom = error === undefined ? undefined : from;
  const box = $('console-error');
  box.hidden = error === undefined;
  box.textContent = error === undefined ? '' : String(error.message ?? error);
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function actionCell(label, danger, action) {
  const td = document.createElement('td');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = danger ? 'small danger' : 'small';
  button.textContent = label;
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action();
      showError(undefined, 'action');
    } catch (error) {
      showError(error, 'action');
    } finally {
      button.disabled = false;
    }
  });
  td.append(button);
  return td;
}

const path = (channel, resource) => `/channels/${encodeURIComponent(channel)}/${resource}`;

// ---- one channel ----------------------------------------------------------------------------

async function openChannel(channel) {
  state.channel = channel;
  $('channel-view').hidden = false;
  $('cv-name').textContent = channel;
  $('cv-log').replaceChildren();
  startLog(channel);
  await refreshChannel();
}

async function refreshChannel() {
  const channel = state.channel;
  if (channel === undefined) return;
  try {
    const [stats, presence, history, connections] = await Promise.all([
      call('GET', path(channel, 'presence-stats')),
      call('GET', path(channel, 'presence')),
      call('GET', `${path(channel, 'history')}?limit=50`),
      call('GET', `/connections?channel=${encodeURIComponent(channel)}&limit=200`),
    ]);
    if (state.channel !== channel) return;
    $('cv-stats').textContent = `${stats.clients} clients, ${stats.users} users`;
    $('cv-position').textContent = `offset ${history.offset}, epoch ${history.epoch}`;
    $('cv-presence').replaceChildren(
      ...presence.clients.map((c) => {
        const li = document.createElement('li');
        li.textContent = `${c.userId || '(anonymous)'} · ${c.clientId}`;
        return li;
      }),
    );
    $('cv-subscribers')
      .querySelector('tbody')
      .replaceChildren(
        ...connections.connections.map((c) => {
          const tr = document.createElement('tr');
          tr.dataset.clientId = c.clientId;
          tr.append(
            cell(c.userId || '(anonymous)'),
            cell(c.transport),
            cell(c.node),
            actionCell('Unsubscribe', false, async () => {
              await call('POST', '/unsubscribe', { client: c.clientId, channel });
              await refreshChannel();
            }),
          );
          return tr;
        }),
      );
    $('cv-history')
      .querySelector('tbody')
      .replaceChildren(
        ...history.publications
          .slice()
          .reverse()
          .map((p) => {
            const tr = document.createElement('tr');
            tr.append(cell(String(p.offset), 'num'), cell(p.event ?? ''), cell(JSON.stringify(p.data), 'data'));
            return tr;
          }),
      );
    showError(undefined, 'channel');
  } catch (error) {
    showError(error, 'channel');
  }
}

/** Follows the channel over SSE; each publication and presence change is one line of the log. */
async function startLog(channel) {
  state.log?.close();
  state.log = undefined;
  try {
    const response = await fetch('/admin/log-token', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error?.message ?? 'no log token');
    if (state.channel !== channel) return;
    const query = new URLSearchParams({ channel, token: answer.token, joinLeave: '1' });
    const source = new EventSource(`/sse?${query}`);
    state.log = source;
    const line = (text) => {
      const li = document.createElement('li');
      li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
      $('cv-log').prepend(li);
      while ($('cv-log').children.length > 200) $('cv-log').lastChild.remove();
    };
    const publication = (e) => {
      const p = JSON.parse(e.data);
      line(`#${p.offset ?? '-'} ${p.event ? `${p.event} ` : ''}${JSON.stringify(p.data)}`);
    };
    source.onmessage = publication;
    // Who is on the channel changed (the log reader itself counts once it is connected): read the
    // figures, presence and subscribers again rather than wait for the periodic refresh.
    source.addEventListener('herald.join', (e) => {
      line(`join ${JSON.parse(e.data).client.userId}`);
      void refreshChannel();
    });
    source.addEventListener('herald.leave', (e) => {
      line(`leave ${JSON.parse(e.data).client.userId}`);
      void refreshChannel();
    });
    // Named publications arrive under their event name: listen to the names history shows.
    source.addEventListener('herald.connected', () => {
      line('following the channel');
      void refreshChannel();
    });
    state.logEvents = new Set();
    state.logPublication = publication;
  } catch (error) {
    showError(error, 'channel');
  }
}

async function publish(event) {
  event.preventDefault();
  const channel = state.channel;
  if (channel === undefined) return;
  let data;
  try {
    data = JSON.parse($('publish-data').value);
  } catch {
    return showError(new Error('the data is not valid JSON'), 'publish');
  }
  const name = $('publish-event').value.trim();
  if (name !== '' && state.log !== undefined && !state.logEvents.has(name)) {
    state.logEvents.add(name);
    state.log.addEventListener(name, state.logPublication);
  }
  try {
    await call('POST', '/publish', { channel, data, ...(name === '' ? {} : { event: name }) });
    showError(undefined, 'publish');
    await refreshChannel();
  } catch (error) {
    showError(error, 'publish');
  }
}

// ---- one user -------------------------------------------------------------------------------

async function openUser(user) {
  state.user = user;
  $('user-view').hidden = false;
  $('uv-name').textContent = user;
  await refreshUser();
}

async function refreshUser() {
  const user = state.user;
  if (user === undefined) return;
  try {
    const answer = await call('GET', `/connections?user=${encodeURIComponent(user)}&limit=1000`);
    if (state.user !== user) return;
    $('uv-count').textContent = `${answer.connections.length}`;
    $('uv-connections')
      .querySelector('tbody')
      .replaceChildren(
        ...answer.connections.map((c) => {
          const tr = document.createElement('tr');
          tr.dataset.clientId = c.clientId;
          tr.append(
            cell(c.clientId.slice(0, 8)),
            cell(c.transport),
            cell(c.node),
            cell(c.channels.join(', ')),
            actionCell('Disconnect', true, async () => {
              await call('POST', '/disconnect', { client: c.clientId });
              await refreshUser();
            }),
          );
          return tr;
        }),
      );
    showError(undefined, 'user');
  } catch (error) {
    showError(error, 'user');
  }
}

$('channel-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void openChannel($('console-channel').value.trim());
});
$('user-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void openUser($('console-user').value.trim());
});
$('publish-form').addEventListener('submit', publish);
$('uv-disconnect-all').addEventListener('click', async () => {
  try {
    // The operator's choice, sent to the API (not a code's advice): these connections stay away.
    await call('POST', '/disconnect', { user: state.user, reconnect: false }); // api-field
    await refreshUser();
  } catch (error) {
    showError(error, 'user');
  }
});
// The channel table of the dashboard drills down: a click on a row opens that channel here.
$('channels-table').addEventListener('click', (event) => {
  const row = event.target.closest('tr');
  const name = row?.querySelector('td')?.textContent?.trim();
  if (!name) return;
  $('console-channel').value = name;
  void openChannel(name);
  $('console').scrollIntoView({ behavior: 'smooth' });
});
// Keep the open views current while actions happen elsewhere.
setInterval(() => {
  if (document.hidden || $('dashboard').hidden) return;
  void refreshChannel();
  void refreshUser();
}, 3000);
