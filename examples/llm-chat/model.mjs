#!/usr/bin/env node
// The sample's "model": a simulated LLM (no external service) that answers every question the
// chat page leaves in the inbox stream, token by token, into a Durable Stream of its own.
//
//   HERALD_URL=http://127.0.0.1:8080 HERALD_API_KEY=... node examples/llm-chat/model.mjs
//
// It speaks the Durable Streams protocol to Herald's /ds/ with the protocol's own client,
// @durable-streams/client: the inbox is read live (SSE) from its start, and each answer is written
// by an IdempotentProducer, so a retried append (after a network blip or a Herald node loss) lands
// once. Creating an answer's stream is how an instance claims a question: PUT answers 201 to one
// caller only, so several model processes (or a restarted one) never answer a question twice.
import { DurableStream, IdempotentProducer, stream } from '@durable-streams/client';

const BASE = (process.env.HERALD_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const KEY = process.env.HERALD_API_KEY;
const RATE = Number(process.env.LLM_TOKENS_PER_SECOND ?? 12);
if (!KEY) {
  console.error('Set HERALD_API_KEY (the hub prints it at start).');
  process.exit(2);
}
const headers = { Authorization: `Bearer ${KEY}` };
const url = (path) => `${BASE}/ds/${path}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Demo streams go a day after their last use (the page creates conversations with the same TTL). */
const TTL = '86400';

/** PUT a stream; true when this call created it (201), false when it was there (200). */
async function create(path, contentType) {
  const response = await fetch(url(path), {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': contentType, 'Stream-TTL': TTL },
  });
  if (response.status !== 201 && response.status !== 200) {
    throw new Error(`PUT /ds/${path}: ${response.status} ${await response.text()}`);
  }
  return response.status === 201;
}

const SENTENCES = [
  'Durable streams keep every token at an offset, so a reader can always ask for what comes next.',
  'When the page reloads, it reads the answer from its start and then follows it live.',
  'Two tabs on the same conversation read the same stream, so they show the same words.',
  'Herald stores each append as a publication on the channel underneath the stream.',
  'Any node sharing the broker can serve the rest of the answer, even if another one went away.',
  'Nothing is shown twice and nothing is skipped: offsets only grow.',
];

/** A deterministic "answer" to a question, as tokens (a word and its space). */
export function answerTokens(question) {
  let hash = 0;
  for (const char of question) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  const text = [
    `You asked: “${question.trim()}”.`,
    ...[0, 1, 2].map((i) => SENTENCES[(hash + i * 5) % SENTENCES.length]),
  ].join(' ');
  return text.split(' ').map((word, i, all) => (i === all.length - 1 ? word : `${word} `));
}

async function answer({ conversation, id, text }) {
  const base = `llm-chat/c/${conversation}`;
  const answerPath = `${base}/a/${id}`;
  // Claim the question: whoever creates its answer stream answers it.
  if (!(await create(answerPath, 'text/plain; charset=utf-8'))) return;
  await create(base, 'application/json');
  // The question and where its answer is, in one append (a JSON array body is two messages).
  const entries = [
    { type: 'question', id, text },
    { type: 'answer', id, stream: answerPath },
  ];
  const logged = await fetch(url(base), {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify(entries),
  });
  if (!logged.ok) throw new Error(`POST /ds/${base}: ${logged.status}`);
  const out = new DurableStream({ url: url(answerPath), headers, contentType: 'text/plain; charset=utf-8' });
  const producer = new IdempotentProducer(out, `model-${id}`, { lingerMs: 0 });
  for (const token of answerTokens(text)) {
    producer.append(token);
    await sleep(1000 / RATE);
  }
  await producer.close();
  console.log(`answered ${id} in ${conversation}`);
}

async function main() {
  await create('llm-chat/inbox', 'application/json');
  const inbox = await stream({ url: url('llm-chat/inbox'), headers, offset: '-1', live: 'sse', json: true });
  console.log(`model ready: answering questions from ${url('llm-chat/inbox')}`);
  inbox.subscribeJson(async (batch) => {
    for (const question of batch.items) {
      if (typeof question?.conversation !== 'string' || typeof question?.id !== 'string') continue;
      answer(question).catch((error) => console.error(`could not answer ${question.id}: ${error.message}`));
    }
  });
  await inbox.closed;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
}
