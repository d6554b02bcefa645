/**
 * Where everything lives in NATS. A channel name may hold `.` (the subject token separator) and
 * characters other deployments might give meaning to, so each channel becomes one subject token:
 * its base64url form, which has only `A-Z a-z 0-9 - _` and is also a valid KV key.
 *
 *   <ns>.h.<token>   history: the JetStream stream `<ns>_history` stores these subjects
 *   <ns>.f.<token>   fan-out: the stream republishes every stored message here, in store order;
 *                    ephemeral publications and join/leave are published here directly
 *   <ns>.control     messages for every node (disconnect_user)
 *   <ns>.requests    node requests (request/reply); answers on `<ns>.answers.<node id>`
 *   <ns>.nodes       node heartbeats (node-roster.ts)
 *   KV `<ns>_epochs`    channel token → epoch, for streams with no message (yet)
 *   KV `<ns>_idem`      `<token>.<key token>` → record, the idempotency window
 *   KV `<ns>_presence`  `<token>.<client token>` → ClientInfo, expiring unless refreshed
 *   KV `<ns>_revocations`  `u.<user token>` / `t.<jti token>` → revocation JSON
 *   KV `<ns>_meta`      key token → value, the metadata store (no expiry)
 */
const NAMESPACE = /^[A-Za-z0-9_-]{1,32}$/;

export class NatsNames {
  readonly namespace: string;
  readonly stream: string;
  readonly control: string;
  readonly requests: string;
  readonly nodes: string;
  readonly epochs: string;
  readonly idempotency: string;
  readonly presence: string;
  readonly revocations: string;
  readonly metadata: string;

  constructor(namespace: string) {
    if (!NAMESPACE.test(namespace)) throw new Error(`NATS namespace "${namespace}" must match ${NAMESPACE}`);
    this.namespace = namespace;
    this.stream = `${namespace}_history`;
    this.control = `${namespace}.control`;
    this.requests = `${namespace}.requests`;
    this.nodes = `${namespace}.nodes`;
    this.epochs = `${namespace}_epochs`;
    this.idempotency = `${namespace}_idem`;
    this.presence = `${namespace}_presence`;
    this.revocations = `${namespace}_revocations`;
    this.metadata = `${namespace}_meta`;
  }

  answers(nodeId: string): string {
    return `${this.namespace}.answers.${nodeId}`;
  }

  historySubjects(): string {
    return `${this.namespace}.h.>`;
  }

  fanoutSubjects(): string {
    return `${this.namespace}.f.>`;
  }

  history(token: string): string {
    return `${this.namespace}.h.${token}`;
  }

  fanout(token: string): string {
    return `${this.namespace}.f.${token}`;
  }
}

/** A string as one subject token / KV key part. */
export function token(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

export function untoken(tokenText: string): string {
  return Buffer.from(tokenText, 'base64url').toString('utf8');
}

/** Message headers Herald puts on stored and fanned-out publications. */
export const HEADER = {
  offset: 'Herald-Offset',
  epoch: 'Herald-Epoch',
  event: 'Herald-Event',
  /** On a message holding several publications: how many (message.ts). */
  count: 'Herald-Count',
  /** On such a message: the index of the publication its Nats-Msg-Id belongs to. */
  keyed: 'Herald-Keyed',
  /** Present on join/leave messages on a fan-out subject; the body is the ControlMessage JSON. */
  control: 'Herald-Control',
  /** Set by JetStream on republished messages: the stream sequence of the stored message. */
  sequence: 'Nats-Sequence',
} as const;
