// Chat: rooms are channels `chat:<room>`. Joining a room loads its recent history, then
// subscribes from exactly where that history ends; typing indicators are ephemeral publications
// (live only, never stored); the people list is the channel's presence, kept up to date with join
// and leave events. The SDK picks the transport (WebSocket, else SSE, else long-polling behind
// proxies that block the others); history, presence and publish work on each.
import { Herald } from '/herald-client.js';
import { demoToken, showConnection, showProblem } from '/lib/demo.js';

let ROOMS = ['lobby', 'random', 'help'];
/**
 * With `?backend=<url>` the page uses the chat's own backend (examples/chat/backend.mjs): a cookie
 * session instead of a demo token, a publish hook that refuses empty or too-long messages, and the
 * room list from an RPC. Without it, the hub's demo tokens.
 */
const BACKEND = new URLSearchParams(location.search).get('backend');
const HISTORY = 50;
/** Send "typing" at most this often while keys are pressed; show it this long after the last one. */
const TYPING_EVERY_MS = 2000;
const TYPING_SHOWN_MS = 3500;
/** Long-polling has no join and leave events: read the people list this often instead. */
const PRESENCE_POLL_MS = 10_000;

const $ = (id) => document.getElementById(id);
const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

let client;
let me;
let room;
let sub;
/** The epoch of the room's stream as this page knows it: a new one means the hub's history was reset. */
let epoch;
/** Live messages held while the messages of a reset stream are read, so they show in order. */
let held;
/** clientId -> {userId, name}: everyone subscribed to the room now. */
const people = new Map();
/** name -> time until which "is typing" shows. */
const typing = new Map();
let lastTypingSent = 0;

// ---- joining ---------------------------------------------------------------------------------

$('join-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('join-button').disabled = true;
  try {
    if (BACKEND) {
      // The backend sets the session cookie; the hub's connect hook asks the backend who it is.
      const login = await fetch(`${BACKEND}/login`, {
        method: 'POST',
        credentials: 'include',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: $('name').value.trim() }),
      });
      if (!login.ok) throw new Error(`The chat backend answered ${login.status}.`);
      me = await login.json();
      client = new Herald(location.origin);
      ROOMS = (await client.rpc('rooms')).rooms;
    } else {
      const first = await demoToken('chat', $('name').value.trim());
      me = { userId: first.userId, name: first.name };
      let fresh = first.token;
      client = new Herald(location.origin, {
        // The SDK's default transport order: WebSocket, then SSE, then long-polling.
        token: async () => {
          const token = fresh ?? (await demoToken('chat', me.name)).token;
          fresh = undefined;
          return token;
        },
      });
    }
    $('conn').hidden = false;
    showConnection(client, $('conn'));
    $('join-view').hidden = true;
    $('chat-view').hidden = false;
    renderRooms();
    await enterRoom(ROOMS.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'lobby');
    $('message').focus();
  } catch (error) {
    showProblem(error.message);
    $('join-button').disabled = false;
  }
});

async function enterRoom(name) {
  sub?.unsubscribe();
  room = name;
  const channel = `chat:${name}`;
  location.hash = name;
  people.clear();
  typing.clear();
  $('messages').replaceChildren();
  $('room-title').textContent = `#${name}`;
  $('room-note').textContent = 'Loading history…';
  renderRooms();
  renderPeople();
  renderTyping();
  try {
    // History first, then subscribe from where it ends: nothing published in between is lost
    // or shown twice.
    const history = await client.history(channel, { limit: HISTORY });
    if (room !== name) return;
    epoch = history.epoch;
    held = undefined;
    for (const pub of history.publications) showPublication(pub);
    const earlier = history.publications.length;
    $('room-note').dataset.empty = String(earlier === 0);
    $('room-note').textContent = earlier
      ? `${earlier} earlier message${earlier === 1 ? '' : 's'}`
      : 'No messages yet. Say hello!';
    sub = client.subscribe(channel, { since: { offset: history.offset, epoch: history.epoch }, joinLeave: true });
  } catch (error) {
    showProblem(`Cannot open #${name}: ${error.message}`);
    return;
  }
  sub.on('publication', onLive);
  sub.on('join', (c) => {
    people.set(c.clientId, person(c));
    renderPeople();
  });
  sub.on('leave', (c) => {
    people.delete(c.clientId);
    renderPeople();
  });
  // (Re)subscribed, also after a reconnect: take the full list again, joins may have been missed.
  sub.on('state', (state) => {
    if (state === 'subscribed') void loadPresence(channel);
  });
  // After a reconnect the SDK resumes from the last message shown: `recovered: true` means every
  // message since followed, so there is nothing to say.
  sub.on('recovered', ({ recovered, position }) => {
    if (recovered) return;
    if (position.epoch === epoch) {
      // Same stream, but the hub no longer holds what followed our last message: it was trimmed
      // while we were away, so messages were missed. Only here is that known to be true.
      $('room-note').textContent = 'Some messages were missed while offline.';
      return;
    }
    // A new stream: the hub restarted without keeping history (the in-memory broker). Nothing says
    // a message was missed; the new stream's messages up to here are read, then live ones follow.
    void readNewStream(channel, position);
  });
}

/** Shows the messages of a reset stream from its start up to `position`, where the subscription goes on. */
async function readNewStream(channel, position) {
  epoch = position.epoch;
  held = [];
  $('room-note').textContent = 'The hub restarted with a new history for this room.';
  try {
    if (position.offset > 0) {
      const start = await client.history(channel, { since: { offset: 0, epoch: position.epoch }, limit: HISTORY });
      if (`chat:${room}` !== channel) return;
      for (const pub of start.publications) if (pub.offset <= position.offset) showPublication(pub);
    }
  } catch (error) {
    showProblem(`Cannot read #${room} since the hub restarted: ${error.message}`);
  } finally {
    const waiting = held ?? [];
    held = undefined;
    for (const pub of waiting) showPublication(pub);
  }
}

// Long-polling carries no join and leave events: keep the people list fresh by asking.
setInterval(() => {
  if (client?.transport === 'poll' && sub?.state === 'subscribed') void loadPresence(sub.channel);
}, PRESENCE_POLL_MS);

async function loadPresence(channel) {
  try {
    const clients = await client.presence(channel);
    if (`chat:${room}` !== channel) return;
    people.clear();
    for (const c of clients) people.set(c.clientId, person(c));
    renderPeople();
  } catch {
    // shown again on the next join or leave
  }
}

function person(c) {
  return { userId: c.userId, name: c.info?.name ?? c.userId };
}

// ---- messages and typing -----------------------------------------------------------------------

/** Live publications: shown at once, or held while the start of a reset stream is being read. */
function onLive(pub) {
  if (held !== undefined && pub.offset !== undefined) held.push(pub);
  else showPublication(pub);
}

function showPublication(pub) {
  if (pub.epoch !== undefined) epoch = pub.epoch;
  const name = pub.info?.name ?? 'someone';
  if (pub.event === 'typing') {
    if (name !== me.name) {
      typing.set(name, Date.now() + TYPING_SHOWN_MS);
      renderTyping();
    }
    return;
  }
  if (pub.event !== 'message' || typeof pub.data?.text !== 'string') return;
  typing.delete(name);
  renderTyping();
  if ($('room-note').dataset.empty === 'true') {
    // "No messages yet" is over with the first one.
    $('room-note').textContent = '';
    $('room-note').dataset.empty = 'false';
  }
  const list = $('messages');
  const li = document.createElement('li');
  li.className = name === me.name ? 'message mine' : 'message';
  const meta = document.createElement('div');
  meta.className = 'meta';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = name;
  const when = document.createElement('time');
  when.textContent = time.format(pub.ts);
  meta.append(who, when);
  const text = document.createElement('p');
  text.className = 'text';
  text.textContent = pub.data.text;
  li.append(meta, text);
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

$('composer').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('message');
  // With the chat backend its publish hook judges the message (empty, too long); else the page does.
  const text = BACKEND ? input.value : input.value.trim();
  if ((!BACKEND && !text) || !sub) return;
  input.value = '';
  lastTypingSent = 0;
  try {
    // Stored, then delivered to everyone in the room, this page included.
    await client.publish(`chat:${room}`, { text }, { event: 'message' });
  } catch (error) {
    showProblem(`Not sent: ${error.message}`);
    input.value = text;
  }
});

$('message').addEventListener('input', () => {
  const now = Date.now();
  if (!sub || now - lastTypingSent < TYPING_EVERY_MS || $('message').value === '') return;
  lastTypingSent = now;
  // Ephemeral: live only, never stored or replayed, the first thing a slow client loses.
  client.publish(`chat:${room}`, { typing: true }, { ephemeral: true, event: 'typing' }).catch(() => undefined);
});

setInterval(() => {
  const now = Date.now();
  let changed = false;
  for (const [name, until] of typing) {
    if (until < now) {
      typing.delete(name);
      changed = true;
    }
  }
  if (changed) renderTyping();
}, 500);

// ---- rendering -----------------------------------------------------------------------------

function renderRooms() {
  $('rooms').replaceChildren(
    ...ROOMS.map((name) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = name === room ? 'room-link active' : 'room-link';
      button.textContent = `# ${name}`;
      button.addEventListener('click', () => name !== room && enterRoom(name));
      return button;
    }),
  );
}

function renderPeople() {
  // One entry per user, however many tabs they have open. This page is always there, also while on
  // long-polling, whose clients the hub does not list in presence (they hold no session).
  const byUser = new Map(me ? [[me.userId, me.name]] : []);
  for (const p of people.values()) byUser.set(p.userId, p.name);
  const names = [...byUser.values()].sort((a, b) => a.localeCompare(b));
  $('people-count').textContent = names.length ? `· ${names.length}` : '';
  $('people').replaceChildren(
    ...names.map((name) => {
      const li = document.createElement('li');
      const avatar = document.createElement('span');
      avatar.className = 'avatar';
      avatar.textContent = name.slice(0, 1).toUpperCase();
      avatar.style.background = colorOf(name);
      const label = document.createElement('span');
      label.textContent = name === me.name ? `${name} (you)` : name;
      li.append(avatar, label);
      return li;
    }),
  );
}

function renderTyping() {
  const names = [...typing.keys()];
  $('typing').textContent =
    names.length === 0
      ? ''
      : names.length === 1
        ? `${names[0]} is typing…`
        : `${names.slice(0, -1).join(', ')} and ${names.at(-1)} are typing…`;
}

const AVATAR_COLORS = ['#4263eb', '#ae3ec9', '#e8590c', '#0c8599', '#d6336c', '#5f3dc4', '#2b8a3e', '#c2255c'];

function colorOf(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return AVATAR_COLORS[hash % AVATAR_COLORS.length];
}
