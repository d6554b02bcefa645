/**
 * The HTTP side of broker-bench, run in a child process (a publisher from another process, as
 * a backend is; on two cores the hub and its publisher do not take turns on one): publishes through the
 * server API for a fixed time with a fixed number of requests in flight, and counts what was
 * acknowledged.
 *
 *   publish:   POST /api/publish, one publication per request
 *   batch:     POST /api/batch, `batchSize` publish commands per request, over the channels
 *   broadcast: POST /api/broadcast, one publication to every channel per request
 */
import { Agent, request } from 'node:http';
import { pathToFileURL } from 'node:url';

export type HttpMode = 'publish' | 'batch' | 'broadcast';

export interface HttpLoadInput {
  readonly port: number;
  readonly apiKey: string;
  readonly mode: HttpMode;
  readonly channels: readonly string[];
  readonly inFlight: number;
  readonly batchSize: number;
  readonly seconds: number;
}

export interface HttpLoadResult {
  /** Publications acknowledged (each channel of a broadcast counts once). */
  readonly published: number;
  /** Publications answered with an error (item errors and failed requests). */
  readonly failed: number;
  readonly requests: number;
  readonly seconds: number;
  /** HTTP status of the first request that was not a 200, if any (404: the route does not exist). */
  readonly firstBadStatus?: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
const data = { payload: 'x'.repeat(100) };

/** One POST with a JSON body over `agent`; resolves with the status and the body text. */
export function post(
  port: number,
  apiKey: string | undefined,
  path: string,
  body: string,
  via: Agent = agent,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: via,
        headers: {
          ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }),
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The request for the n-th call, and how many publications it carries. */
function nextRequest(input: HttpLoadInput, n: number): { path: string; body: string; items: number } {
  const { channels } = input;
  const channel = (i: number): string => channels[i % channels.length] as string;
  if (input.mode === 'publish') {
    return { path: '/api/publish', body: JSON.stringify({ channel: channel(n), data }), items: 1 };
  }
  if (input.mode === 'broadcast') {
    return { path: '/api/broadcast', body: JSON.stringify({ channels, data }), items: channels.length };
  }
  const commands = Array.from({ length: input.batchSize }, (_, i) => ({
    method: 'publish',
    params: { channel: channel(n * input.batchSize + i), data },
  }));
  return { path: '/api/batch', body: JSON.stringify({ commands }), items: input.batchSize };
}

/** Item errors in a 200 answer: `"error":` appears once per failed item in these shapes. */
function countErrors(text: string): number {
  let count = 0;
  for (let i = text.indexOf('"error":'); i !== -1; i = text.indexOf('"error":', i + 1)) count++;
  return count;
}

export async function runHttpLoad(input: HttpLoadInput): Promise<HttpLoadResult> {
  let published = 0;
  let failed = 0;
  let requests = 0;
  let firstBadStatus: number | undefined;
  const start = performance.now();
  const deadline = start + input.seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: input.inFlight }, async () => {
      while (performance.now() < deadline && firstBadStatus !== 404) {
        const { path, body, items } = nextRequest(input, n++);
        requests++;
        try {
          const { status, text } = await post(input.port, input.apiKey, path, body);
          if (status !== 200) {
            firstBadStatus ??= status;
            failed += items;
            continue;
          }
          const errors = countErrors(text);
          failed += errors;
          published += items - errors;
        } catch {
          failed += items;
        }
      }
    }),
  );
  agent.destroy();
  const result = { published, failed, requests, seconds: (performance.now() - start) / 1000 };
  return firstBadStatus === undefined ? result : { ...result, firstBadStatus };
}

// Forked by broker-scenarios.ts: one input message in, one answer out (not when imported by publisher.ts).
if (
  process.send !== undefined &&
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(process.argv[1]).href
) {
  process.once('message', (input: HttpLoadInput) => {
    void runHttpLoad(input).then(
      (result) => process.send?.({ ok: true, result }, () => process.exit(0)),
      (error: unknown) => process.send?.({ ok: false, error: String(error) }, () => process.exit(1)),
    );
  });
}
