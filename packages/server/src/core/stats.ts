/**
 * Plain counters on the delivery path. Prometheus reads them at scrape time, so a delivery costs
 * an integer increment rather than a labelled metric lookup.
 */
export const TRANSPORTS = ['websocket', 'sse', 'poll', 'socketio'] as const;
export type TransportKind = (typeof TRANSPORTS)[number];

export class HubStats {
  readonly connections: Record<TransportKind, number> = { websocket: 0, sse: 0, poll: 0, socketio: 0 };
  readonly deliveries: Record<TransportKind, number> = { websocket: 0, sse: 0, poll: 0, socketio: 0 };
  publications = 0;
  slowConsumerDisconnects = 0;
  ephemeralDropped = 0;
  authFailures = 0;
  rateLimited = 0;
}
