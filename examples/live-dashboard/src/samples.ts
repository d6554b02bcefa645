/** What the publisher (../publish-metrics.mjs) sends, and the last POINTS of it as chart series. */
export interface Sample {
  readonly cpuPercent: number;
  readonly loopLagMs: number;
  readonly rssMb: number;
  readonly heapMb: number;
  readonly connections?: Partial<Record<'websocket' | 'sse' | 'poll' | 'socketio', number>>;
  readonly deliveriesPerSecond: number;
  readonly publicationsPerSecond: number;
}

/** Two minutes at one sample a second. */
export const POINTS = 120;

const KEYS = ['cpu', 'rss', 'heap', 'websocket', 'sse', 'poll', 'deliveries', 'publications'] as const;
export type Series = Record<(typeof KEYS)[number], number[]>;

export function emptySeries(): Series {
  return Object.fromEntries(KEYS.map((k) => [k, []])) as unknown as Series;
}

/** Appends one sample to every series, dropping the oldest past POINTS. */
export function addSample(series: Series, d: Sample): void {
  const values: Record<keyof Series, number | undefined> = {
    cpu: d.cpuPercent,
    rss: d.rssMb,
    heap: d.heapMb,
    websocket: d.connections?.websocket,
    sse: d.connections?.sse,
    poll: d.connections?.poll,
    deliveries: d.deliveriesPerSecond,
    publications: d.publicationsPerSecond,
  };
  for (const key of KEYS) {
    series[key].push(Number(values[key]) || 0);
    if (series[key].length > POINTS) series[key].shift();
  }
}
