/**
 * Which nodes share this NATS namespace, for request/reply (core NATS cannot count subscribers).
 * Every node says "up" on `<ns>.nodes` when it starts and every HEARTBEAT_MS after, "down" when
 * it closes. The first "up" is a greeting with a reply subject: every node that hears it counts the
 * newcomer, then answers, and `start` returns once the answers stop coming. So when a node's start
 * resolves, every live peer counts it (a request sent right after reaches them all) and it counts
 * them. A node silent for three heartbeats (lost without saying "down") is dropped: until then a
 * request waits for it until its timeout and reports it missing.
 */
import { createInbox, type Msg, type NatsConnection, type Subscription } from 'nats';

const HEARTBEAT_MS = 5_000;
const SILENT_AFTER_MS = 3 * HEARTBEAT_MS;
/** The greeting ends this long after the last answer (the node's own comes first, at once)... */
const GREETING_QUIET_MS = 150;
/** ...or this long after it was sent, whatever else comes later. */
const GREETING_MAX_MS = 1_000;

interface Beat {
  readonly node: string;
  readonly state: 'up' | 'down';
}

export class NodeRoster {
  readonly #self: string;
  readonly #subject: string;
  readonly #seen = new Map<string, number>();
  #nc: NatsConnection | undefined;
  #sub: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(self: string, subject: string) {
    this.#self = self;
    this.#subject = subject;
  }

  async start(nc: NatsConnection): Promise<void> {
    this.#nc = nc;
    this.#sub = nc.subscribe(this.#subject, { callback: (_error, msg) => this.#onBeat(msg) });
    await this.#greet(nc);
    this.#timer = setInterval(() => this.#say('up'), HEARTBEAT_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#say('down');
    this.#sub?.unsubscribe();
    this.#nc = undefined;
  }

  /** The nodes believed alive, this one included. */
  count(now = Date.now()): number {
    let count = 1;
    for (const [node, at] of this.#seen) {
      if (now - at <= SILENT_AFTER_MS) count++;
      else this.#seen.delete(node);
    }
    return count;
  }

  /** Says "up" with a reply subject and resolves when the answers stop (see the header). */
  async #greet(nc: NatsConnection): Promise<void> {
    const inbox = createInbox();
    await new Promise<void>((resolve) => {
      let quiet: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(quiet);
        clearTimeout(cap);
        answers.unsubscribe();
        resolve();
      };
      const cap = setTimeout(done, GREETING_MAX_MS);
      const answers = nc.subscribe(inbox, {
        callback: (_error, msg) => {
          const beat = parseBeat(msg);
          if (beat) this.#heard(beat); // the answerer already counts this node: nothing to say back
          clearTimeout(quiet);
          quiet = setTimeout(done, GREETING_QUIET_MS);
        },
      });
      try {
        nc.publish(this.#subject, this.#beat('up'), { reply: inbox });
      } catch {
        done(); // disconnected: the heartbeats say it later
      }
    });
  }

  #onBeat(msg: Msg): void {
    const beat = parseBeat(msg);
    if (!beat) return;
    const isNew = this.#heard(beat);
    // A greeting is answered after counting its sender, by the sender itself too: its own answer
    // arrives first and starts the quiet window. A heartbeat from a node not known yet (one this
    // node joined after, or back from a partition) gets an "up" so it counts this node as well.
    if (msg.reply) this.#answer(msg);
    else if (isNew) this.#say('up');
  }

  /** Records a beat; true when it came from a node not counted before. */
  #heard(beat: Beat): boolean {
    if (beat.node === this.#self) return false;
    if (beat.state === 'down') {
      this.#seen.delete(beat.node);
      return false;
    }
    const isNew = !this.#seen.has(beat.node);
    this.#seen.set(beat.node, Date.now());
    return isNew;
  }

  #beat(state: Beat['state']): string {
    return JSON.stringify({ node: this.#self, state } satisfies Beat);
  }

  #answer(msg: Msg): void {
    try {
      msg.respond(this.#beat('up'));
    } catch {
      // disconnected: the greeter's heartbeats carry on without this answer
    }
  }

  #say(state: Beat['state']): void {
    try {
      this.#nc?.publish(this.#subject, this.#beat(state));
    } catch {
      // disconnected: the next heartbeat says it again
    }
  }
}

function parseBeat(msg: Msg): Beat | undefined {
  try {
    const beat = JSON.parse(msg.string()) as Beat;
    return typeof beat?.node === 'string' ? beat : undefined;
  } catch {
    return undefined; // not a beat of ours
  }
}
