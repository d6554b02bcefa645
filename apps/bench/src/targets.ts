/** What the bench compares: each target is a server process kind plus the client that speaks to it. */
export const BENCH_CHANNEL = 'bench';

/** `herald-cli`: the `herald serve` command (server-herald-cli.ts); `herald`: `HeraldServer` in the bench's process. */
export type ServerKind = 'ws' | 'sse' | 'socketio' | 'herald' | 'herald-cli';
export type ClientKind = 'ws' | 'sse' | 'socketio' | 'herald-ws' | 'herald-sse' | 'herald-poll' | 'herald-socketio';

export interface Target {
  readonly id: TargetId;
  readonly label: string;
  readonly server: ServerKind;
  readonly serverArgs: readonly string[];
  readonly client: ClientKind;
}

export const TARGET_IDS = [
  'ws',
  'socketio',
  'sse',
  'herald-ws',
  'herald-sse',
  'herald-poll',
  'herald-socketio',
] as const;
export type TargetId = (typeof TARGET_IDS)[number];

export const TARGETS: Readonly<Record<TargetId, Target>> = {
  ws: { id: 'ws', label: 'raw ws', server: 'ws', serverArgs: [], client: 'ws' },
  socketio: {
    id: 'socketio',
    label: 'Socket.IO 4 (websocket)',
    server: 'socketio',
    serverArgs: [],
    client: 'socketio',
  },
  sse: { id: 'sse', label: 'plain SSE (node:http)', server: 'sse', serverArgs: [], client: 'sse' },
  'herald-ws': { id: 'herald-ws', label: 'Herald WebSocket', server: 'herald', serverArgs: [], client: 'herald-ws' },
  'herald-sse': { id: 'herald-sse', label: 'Herald SSE', server: 'herald', serverArgs: [], client: 'herald-sse' },
  'herald-poll': {
    id: 'herald-poll',
    label: 'Herald long-poll',
    server: 'herald',
    serverArgs: [],
    client: 'herald-poll',
  },
  'herald-socketio': {
    id: 'herald-socketio',
    label: 'Herald Socket.IO',
    server: 'herald',
    serverArgs: ['--socketio'],
    client: 'herald-socketio',
  },
};

/** The reference every ratio is computed against, within the same round. */
export const BASELINE: TargetId = 'ws';
