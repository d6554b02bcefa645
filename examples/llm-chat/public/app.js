// LLM chat on Durable Streams. The page never holds the answer: it is a stream on the hub.
//
//   llm-chat/inbox                 the page appends each question here (JSON)
//   llm-chat/c/<conversation>      the model appends the question and its answer's stream (JSON)
//   llm-chat/c/<conv>/a/<id>       the answer, token by token (text), closed when done
//
// On load (and on reload) the page reads the conversation from its start and each answer from
// its start, then follows them live: an answer still being written shows what is there and goes
// on from exactly there. A second tab on the same URL reads the same streams.
import { demoToken, showProblem } from '/lib/demo.js';
import { append, create, follow } from './ds.js';

const $ = (id) => document.getElementById(id);
const conversation = /^#[a-z0-9]{6,32}$/.test(location.hash) ? location.hash.slice(1) : newId();
if (location.hash.slice(1) !== conversation) history.replaceState(null, '', `#${conversation}`);
$('share').href = location.href;

let token;
const answers = new Map();

function newId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => (b % 36).toString(36)).join('');
}

function showTurn(entry) {
  if (entry.type === 'question') {
    const li = document.createElement('li');
    li.className = 'turn question';
    li.textContent = entry.text;
    $('turns').append(li);
  } else if (entry.type === 'answer' && !answers.has(entry.id)) {
    const li = document.createElement('li');
    li.className = 'turn answer';
    li.dataset.id = entry.id;
    li.dataset.state = 'streaming';
    const text = document.createElement('span');
    text.className = 'text';
    li.append(text);
    $('turns').append(li);
    answers.set(entry.id, li);
    void follow(entry.stream, token, (tokens) => {
      text.textContent += tokens;
      li.scrollIntoView({ block: 'end' });
    }).then((end) => {
      li.dataset.state = end === 'closed' ? 'done' : 'stopped';
    });
  }
  $('hint').hidden = true;
}

async function followConversation() {
  // The conversation's stream exists from the first visit on (a repeated PUT only confirms it).
  const created = await create(`llm-chat/c/${conversation}`, token, 86_400);
  if (created !== 200 && created !== 201) throw new Error(`The hub refused the conversation (${created}).`);
  await follow(`llm-chat/c/${conversation}`, token, (batch) => batch.forEach(showTurn), { json: true });
}

$('composer').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('question').value.trim();
  if (text === '') return;
  $('question').value = '';
  const status = await append('llm-chat/inbox', token, { conversation, id: newId(), text });
  if (status === 404) $('hint').hidden = false;
  else if (status >= 300) showProblem(`The hub refused the question (${status}).`);
  else setTimeout(() => ($('hint').hidden = document.querySelector('.turn') !== null), 3000);
});

try {
  ({ token } = await demoToken('llm'));
  $('conn').dataset.state = 'connected';
  $('conn').textContent = 'Live · Durable Streams (SSE)';
  $('question').focus();
  await followConversation();
} catch (error) {
  showProblem(error.message);
  $('conn').dataset.state = 'closed';
  $('conn').textContent = 'Stopped';
}
