/**
 * An AI SDK 5 app with `useChat({ resume: true })`'s two routes, as the AI SDK's "Chatbot Resume
 * Streams" guide writes them, with `@herald/resumable-stream` in place of `resumable-stream`:
 * POST /api/chat streams a (simulated) model's answer and keeps it through `consumeSseStream`; GET
 * /api/chat/:id/stream resumes it. Two app instances on two Herald nodes (Redis): the browser's
 * request to the first is cut mid-answer (a reload), and the AI SDK's own DefaultChatTransport
 * reconnects through the second and rebuilds the whole message.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import type { LanguageModelV2, LanguageModelV2StreamPart } from '@ai-sdk/provider';
import {
  DefaultChatTransport,
  UI_MESSAGE_STREAM_HEADERS,
  convertToModelMessages,
  readUIMessageStream,
  streamText,
  type UIMessage,
} from 'ai';
import { createRedisBackend } from '@herald/broker-redis';
import { createResumableStreamContext } from '@herald/resumable-stream';
import { API_KEY, type TestHub } from '../../../test/support/hub.ts';
import { startDsHub } from '../../../test/support/ds.ts';
import { deleteRedisPrefix, REDIS_URL, testPrefix } from '../../../test/support/redis.ts';
import { requireService, SERVICES } from '../../../test/support/services.ts';

const prefix = testPrefix();
const WORDS = Array.from({ length: 60 }, (_, i) => `word${i} `);
const hubs: TestHub[] = [];
const apps: Server[] = [];
/** The app's database: which stream is the chat's active one (shared by both app instances). */
const activeStreams = new Map<string, string>();

/**
 * Holds the model after its first HELD_AFTER words until the test lets it go: the reload and the
 * resume then happen mid-answer however slow the machine (with a model that just kept typing, a
 * slow CI run could finish the answer before the resume arrived, and find nothing to resume).
 */
const HELD_AFTER = 20;
let releaseModel!: () => void;
const modelReleased = new Promise<void>((resolve) => (releaseModel = resolve));

/** A language model that streams WORDS, one every 10 ms: no external service. */
const model: LanguageModelV2 = {
  specificationVersion: 'v2',
  provider: 'simulated',
  modelId: 'typist',
  supportedUrls: {},
  doGenerate: () => Promise.reject(new Error('this model only streams')),
  doStream: async () => {
    const parts: LanguageModelV2StreamPart[] = [
      { type: 'stream-start', warnings: [] },
      { type: 'text-start', id: 't1' },
      ...WORDS.map((delta) => ({ type: 'text-delta' as const, id: 't1', delta })),
      { type: 'text-end', id: 't1' },
      { type: 'finish', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 60, totalTokens: 63 } },
    ];
    let next = 0;
    return {
      stream: new ReadableStream<LanguageModelV2StreamPart>({
        async pull(controller) {
          if (next === parts.length) return controller.close();
          await new Promise((resolve) => setTimeout(resolve, 10));
          if (next === 2 + HELD_AFTER) await modelReleased;
          controller.enqueue(parts[next++] as LanguageModelV2StreamPart);
        },
      }),
    };
  },
};

/** The app's two routes, as the AI SDK guide has them, on one Herald node. */
function app(heraldUrl: string): (request: Request) => Promise<Response> {
  const streamContext = createResumableStreamContext({ url: heraldUrl, token: API_KEY, waitUntil: null });
  return async (request) => {
    const url = new URL(request.url);
    if (request.method === 'POST' && url.pathname === '/api/chat') {
      const { id, messages } = (await request.json()) as { id: string; messages: UIMessage[] };
      const result = streamText({ model, messages: convertToModelMessages(messages) });
      return result.toUIMessageStreamResponse({
        originalMessages: messages,
        async consumeSseStream({ stream }) {
          const streamId = crypto.randomUUID();
          await streamContext.createNewResumableStream(streamId, () => stream);
          activeStreams.set(id, streamId);
        },
      });
    }
    const resume = /^\/api\/chat\/([^/]+)\/stream$/.exec(url.pathname);
    if (request.method === 'GET' && resume !== null) {
      const streamId = activeStreams.get(resume[1] as string);
      if (streamId === undefined) return new Response(null, { status: 204 });
      const stream = await streamContext.resumeExistingStream(streamId);
      if (!stream) return new Response(null, { status: 204 });
      return new Response(stream.pipeThrough(new TextEncoderStream()), { headers: UI_MESSAGE_STREAM_HEADERS });
    }
    return new Response('not found', { status: 404 });
  };
}

/** Serves a Web-standard handler on node:http (what Next.js does for a route). */
async function serve(handler: (request: Request) => Promise<Response>): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
      const response = await handler(
        new Request(`http://${req.headers.host}${req.url}`, {
          method: req.method,
          headers: req.headers as Record<string, string>,
          ...(body === undefined ? {} : { body }),
        }),
      );
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body === null) return void res.end();
      const reader = response.body.getReader();
      res.once('close', () => void reader.cancel().catch(() => undefined));
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done || value === undefined) break;
        res.write(value);
      }
      res.end();
    })().catch(() => res.destroy());
  });
  apps.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

before(async () => {
  if (!(await SERVICES.redis.check())) return;
  for (let i = 0; i < 2; i++) {
    const backend = await createRedisBackend({ url: REDIS_URL, prefix, history: { size: 1000, ttlSeconds: 600 } });
    hubs.push(await startDsHub({ broker: backend.broker, presence: backend.presence }));
  }
});

after(async () => {
  releaseModel(); // a failed assertion must not leave the model waiting
  for (const server of apps) server.closeAllConnections();
  for (const server of apps) await new Promise((r) => server.close(r));
  for (const hub of hubs) await hub.close();
  if (await SERVICES.redis.check()) await deleteRedisPrefix(REDIS_URL, prefix);
});

it('useChat({ resume: true }): a reload mid-answer resumes the whole answer through another app instance and Herald node', async (t) => {
  if (!(await requireService(t, 'redis'))) return;
  const [a, b] = hubs as [TestHub, TestHub];
  const first = await serve(app(a.url));
  const second = await serve(app(b.url));
  const chatId = 'chat-1';
  const messages: UIMessage[] = [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Type sixty words.' }] }];

  // The tab sends the message and reads a few chunks of the answer, then reloads.
  const reload = new AbortController();
  const live = await new DefaultChatTransport<UIMessage>({ api: `${first}/api/chat` }).sendMessages({
    trigger: 'submit-message',
    chatId,
    messageId: undefined,
    messages,
    abortSignal: reload.signal,
  });
  const reader = live.getReader();
  const before: string[] = [];
  while (before.length < 10) {
    const { value } = await reader.read();
    if (value?.type === 'text-delta') before.push(value.delta);
  }
  reload.abort();
  await reader.cancel().catch(() => undefined);
  assert.deepEqual(before, WORDS.slice(0, 10));
  // The reload comes after the app saved the answer's stream id (the guide's database write).
  for (let waited = 0; !activeStreams.has(chatId) && waited < 10_000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }

  // After the reload, useChat({ resume: true }) calls the transport's reconnectToStream (GET
  // /api/chat/:id/stream), here answered by the other app instance on the other Herald node.
  const resumed = await new DefaultChatTransport<UIMessage>({ api: `${second}/api/chat` }).reconnectToStream({
    chatId,
  });
  assert.ok(resumed, 'an active stream to resume');
  releaseModel();
  let message: UIMessage | undefined;
  for await (const partial of readUIMessageStream<UIMessage>({ stream: resumed })) message = partial;
  const text = message?.parts.map((part) => (part.type === 'text' ? part.text : '')).join('');
  assert.equal(text, WORDS.join(''), 'the whole answer, each word once');
  assert.equal(message?.role, 'assistant');

  // Once it finished, there is nothing to resume: the route answers 204, the transport null.
  activeStreams.set('chat-done', activeStreams.get(chatId) as string);
  assert.equal(
    await new DefaultChatTransport<UIMessage>({ api: `${first}/api/chat` }).reconnectToStream({ chatId: 'chat-done' }),
    null,
  );
});
