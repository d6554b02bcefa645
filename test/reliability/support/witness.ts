/**
 * The healthy bystanders of an attack: a publisher that publishes throughout, and a WebSocket and
 * an SSE subscriber that must count every one of its publications, in order, with no gap and no
 * duplicate. Whatever the attackers do to the hub, `finish()` says whether the others noticed.
 */
import { API_KEY, token, until } from '../../support/hub.ts';
import { RawSse, streamQuery } from '../../support/sse.ts';
import { WsTestClient } from '../../support/ws-client.ts';

export interface WitnessReport {
  /** Publications the hub acknowledged. */
  readonly acked: number;
  /** Publish requests that failed (must be 0 while the hub is healthy). */
  readonly failed: number;
  readonly wsReceived: number;
  readonly sseReceived: number;
  /** Longest time one publish took, ms (a stalled event loop shows here). */
  readonly maxPublishMs: number;
}

export class Witness {
  readonly channel: string;
  readonly #url: string;
  readonly #ws: WsTestClient;
  readonly #sse: RawSse;
  readonly #intervalMs: number;
  #running = true;
  #acked: number[] = [];
  #failed = 0;
  #maxPublishMs = 0;
  #loop: Promise<void> = Promise.resolve();

  private constructor(url: string, channel: string, ws: WsTestClient, sse: RawSse, intervalMs: number) {
    this.#url = url;
    this.channel = channel;
    this.#ws = ws;
    this.#sse = sse;
    this.#intervalMs = intervalMs;
  }

  static async start(hub: { url: string; wsUrl: string }, channel = 'witness', intervalMs = 10): Promise<Witness> {
    const jwt = await token({ sub: 'witness', channels: [channel] });
    const ws = await WsTestClient.connect(hub.wsUrl, jwt);
    await ws.ok('subscribe', { channel });
    const sse = await RawSse.open(`${hub.url}/sse?${streamQuery([channel], { token: jwt })}`);
    if (sse.status !== 200) throw new Error(`witness SSE refused: ${sse.status}`);
    await until(() => sse.events.some((e) => e.event === 'herald.connected'), 'the SSE witness to connect');
    const witness = new Witness(hub.url, channel, ws, sse, intervalMs);
    witness.#loop = witness.#publishLoop();
    return witness;
  }

  get acked(): number {
    return this.#acked.length;
  }

  async #publishLoop(): Promise<void> {
    let n = 0;
    while (this.#running) {
      const started = Date.now();
      try {
        const response = await fetch(`${this.#url}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel: this.channel, data: { n: ++n } }),
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await response.json()) as { offset?: number };
        if (response.status === 200 && typeof body.offset === 'number') this.#acked.push(body.offset);
        else this.#failed++;
      } catch {
        this.#failed++;
      }
      this.#maxPublishMs = Math.max(this.#maxPublishMs, Date.now() - started);
      await new Promise((r) => setTimeout(r, this.#intervalMs));
    }
  }

  /** Stops publishing, waits for both subscribers to catch up, and checks what they got. */
  async finish(timeoutMs = 30_000): Promise<WitnessReport> {
    this.#running = false;
    await this.#loop;
    const expected = this.#acked.length;
    const wsOffsets = (): number[] => this.#ws.publications(this.channel).map((p) => p.offset as number);
    const sseOffsets = (): number[] => this.#sse.publications().map((p) => p.offset as number);
    try {
      await until(
        () => wsOffsets().length >= expected && sseOffsets().length >= expected,
        'the witnesses to catch up',
        timeoutMs,
      );
    } catch {
      // reported below with the exact counts
    }
    const report: WitnessReport = {
      acked: expected,
      failed: this.#failed,
      wsReceived: wsOffsets().length,
      sseReceived: sseOffsets().length,
      maxPublishMs: this.#maxPublishMs,
    };
    const want = this.#acked.join(',');
    const problems: string[] = [];
    if (this.#failed > 0) problems.push(`${this.#failed} publishes failed`);
    if (this.#acked.some((offset, i) => offset !== i + 1)) problems.push('acknowledged offsets are not 1..N');
    if (wsOffsets().join(',') !== want)
      problems.push(`WebSocket witness got ${wsOffsets().length} of ${expected} (or out of order)`);
    if (sseOffsets().join(',') !== want)
      problems.push(`SSE witness got ${sseOffsets().length} of ${expected} (or out of order)`);
    if (this.#ws.closeCode !== undefined) problems.push(`WebSocket witness was closed (${this.#ws.closeCode})`);
    this.#ws.close();
    this.#sse.close();
    if (problems.length > 0) throw new Error(`the healthy clients noticed: ${problems.join('; ')}`);
    return report;
  }

  /** Ends the witnesses without checking (cleanup after a failure). */
  abort(): void {
    this.#running = false;
    this.#ws.close();
    this.#sse.close();
  }
}
