/**
 * Plain counters on the delivery path. Prometheus reads them at scrape time, so a delivery costs
 * an integer increment rather than a labelled metric lookup.
 */

/** The transports the hub serves itself; a protocol plugin names its own (`'socketio'`, ...). */
export const TRANSPORTS = ['websocket', 'sse', 'poll', 'socketio'] as const;
/** The `transport` label of a connection: one of TRANSPORTS, or a plugin's own name. */
export type TransportKind = string;

/** The counters as the hub shows them (metrics, admin feed): read-only. */
export interface HubStatsView {
  /** Open connections per transport; every transport that ever had one is listed. */
  readonly connections: Readonly<Record<TransportKind, number>>;
  readonly deliveries: Readonly<Record<TransportKind, number>>;
  readonly publications: number;
  readonly slowConsumerDisconnects: number;
  readonly ephemeralDropped: number;
  readonly authFailures: number;
  readonly rateLimited: number;
}

/** The counters as the core keeps them; only the hub and its sessions hold this writable object. */
export class HubStats implements HubStatsView {
  readonly connections: Record<TransportKind, number> = zeroes();
  readonly deliveries: Record<TransportKind, number> = zeroes();
  publications = 0;
  slowConsumerDisconnects = 0;
  ephemeralDropped = 0;
  authFailures = 0;
  rateLimited = 0;

  /** A connection of `kind` opened (+1) or closed (-1). */
  connection(kind: TransportKind, change: 1 | -1): void {
    this.connections[kind] = (this.connections[kind] ?? 0) + change;
    this.deliveries[kind] ??= 0;
  }

  /** A publication was written to a client of `kind`. */
  delivered(kind: TransportKind): void {
    this.deliveries[kind] = (this.deliveries[kind] ?? 0) + 1;
  }
}

function zeroes(): Record<TransportKind, number> {
  return Object.fromEntries(TRANSPORTS.map((t) => [t, 0]));
}
